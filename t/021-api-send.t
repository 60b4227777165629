# POST /api/send-to-user: exact delivery counts across workers, the
# message the user's connections get, validation (400), wrong methods
# (405), size limits (413), and bodies that arrive slowly, chunked, or
# land in a temporary file.

use Test::Nginx::Socket 'no_plan';
use WsRelay::Test;
use WsRelay::Redis;
use WsRelay::Api;

sub raw_post {
    my ($body, @pieces) = @_;

    return ["POST /api/send-to-user HTTP/1.1\r\nHost: localhost\r\n"
            . "Connection: close\r\nContent-Type: application/json\r\n"
            . "Content-Length: " . length($body) . "\r\n\r\n", @pieces];
}

redis_start();
api_defaults();

master_on();
workers(2);
log_level('info');
run_tests();

__DATA__

=== TEST 1: exact counts for users on one worker, on the other, on both; every connection gets the message once
--- ws_session
my ($wa, $wb) = nginx_workers_up();
my ($A, $B) = ws_open_per_worker('/ws', 3);
my ($a1, $a2, $a3) = @$A;
my ($b1, $b2, $b3) = @$B;

$_->call({type => 'register', userId => 'solo-a'}) for $a1, $a2;
$_->call({type => 'register', userId => 'solo-b'}) for $b1;
$_->call({type => 'register', userId => 'both'}) for $a3, $b2, $b3;
wait_presence({$wa => ['solo-a', 'both'], $wb => ['solo-b', 'both']});

my %targets = ('solo-a' => [$a1, $a2], 'solo-b' => [$b1],
               both => [$a3, $b2, $b3]);

# whichever worker takes a request, one of solo-a and solo-b is remote
for my $round (1 .. 3) {
    for my $user (sort keys %targets) {
        my $n = @{ $targets{$user} };
        json_is(api_post('/api/send-to-user',
                         {userId => $user, message => "$user #$round"}),
                {success => TRUE, delivered => $n, userId => $user},
                "round $round: $user: delivered $n");

        json_is($_, {type => 'notification', message => "$user #$round",
                     sender => 'system', timestamp => NOW},
                "round $round: $user: a connection got it")
            for next_json(2, @{ $targets{$user} });
    }
}

$_->expect_silence(0.3, 'nothing more for anyone') for $a1, $b1, $b3;
--- no_error_log
[error]
[crit]



=== TEST 2: type defaults to "notification" (when falsy); message is any truthy JSON value, passed through
--- ws_session
my ($wa, $wb) = nginx_workers_up();
my @u = map { $_->[0] } ws_open_per_worker('/ws', 1);
$_->call({type => 'register', userId => "\x{e9}l\x{e8}ve"}) for @u;
wait_presence({$wa => ["\x{e9}l\x{e8}ve"], $wb => ["\x{e9}l\x{e8}ve"]});

my @cases = (
    [{message => {text => 'hi', n => [1, 2.5, {x => undef}]}},
     'notification', 'an object'],
    [{message => [1, 'two', FALSE]}, 'notification', 'an array'],
    [{message => 'plain'}, 'notification', 'a string'],
    [{message => 1.5}, 'notification', 'a number'],
    [{message => TRUE}, 'notification', 'true'],
    [{message => "\x{263a} \x{1f600}"}, 'notification', 'non-ASCII'],
    [{message => 'x', type => 'alert'}, 'alert', 'a type of its own'],
    [{message => 'x', type => ''}, 'notification', 'an empty type'],
    [{message => 'x', type => undef}, 'notification', 'a null type'],
    [{message => 'x', type => 0}, 'notification', 'a zero type'],
    [{message => 'x', type => 7}, 7, 'a number type, as it is'],
    [{message => 'x', type => {a => 1}}, {a => 1}, 'an object type, as it is'],
    [{message => 'x', extra => {ignored => 1}}, 'notification',
     'unknown fields are ignored'],
);

for my $case (@cases) {
    my ($body, $type, $what) = @$case;
    json_is(api_post('/api/send-to-user',
                     {userId => "\x{e9}l\x{e8}ve", %$body}),
            {success => TRUE, delivered => 2, userId => "\x{e9}l\x{e8}ve"},
            "$what: delivered 2");
    json_is($_, {type => $type, message => $body->{message},
                 sender => 'system', timestamp => NOW},
            "$what: what the connection got")
        for next_json(2, @u);
}
--- no_error_log
[error]
[crit]



=== TEST 3: a user without connections: no success, delivered 0; a closed connection no longer counts
--- ws_session
my $c = ws_open('/ws');
my $d = ws_open('/ws');
$_->call({type => 'register', userId => 'dan'}) for $c, $d;

json_is(api_post('/api/send-to-user', {userId => 'nobody', message => 'x'}),
        {success => FALSE, delivered => 0, userId => 'nobody'},
        'nobody: delivered 0');

$d->close;
my $n;
for (1 .. 20) {
    $n = api_post('/api/send-to-user', {userId => 'dan', message => 'x'})
         ->{delivered};
    last if $n == 1;
    sleep 0.1;
}
is($n, 1, 'dan after one of his connections closed: delivered 1');
--- no_error_log
[error]
[crit]



=== TEST 4: invalid bodies: 400 with {"error": ...}, nothing delivered
--- ws_session
my $c = ws_open('/ws');
$c->call({type => 'register', userId => 'u1'});

my @cases = (
    ['{"message":"x"}', 'Missing userId'],
    ['{"userId":"","message":"x"}', 'Missing userId'],
    ['{"userId":null,"message":"x"}', 'Missing userId'],
    ['{"userId":0,"message":"x"}', 'Missing userId'],
    ['{"userId":false,"message":"x"}', 'Missing userId'],
    ['{"userId":"u1","userId":"","message":"x"}', 'Missing userId'],
    ['{"userId":"u1"}', 'Missing message'],
    ['{"userId":"u1","message":null}', 'Missing message'],
    ['{"userId":"u1","message":""}', 'Missing message'],
    ['{"userId":"u1","message":0}', 'Missing message'],
    ['{"userId":"u1","message":-0.0e5}', 'Missing message'],
    ['{"userId":"u1","message":false}', 'Missing message'],
    ['{"userId":42,"message":"x"}', 'userId must be a string'],
    ['{"userId":["u1"],"message":"x"}', 'userId must be a string'],
    ['{"userId":{"id":"u1"},"message":"x"}', 'userId must be a string'],
    ['{"userId":true,"message":"x"}', 'userId must be a string'],
    ['{"userId":"' . ('u' x 257) . '","message":"x"}', 'userId is too long'],
    ['{"userId":"u1","message":', undef],
    ['not json', undef],
    ['', undef],
    ['[{"userId":"u1","message":"x"}]', undef],
    ['"u1"', undef],
    ['42', undef],
    ['null', undef],
    ['{"userId":"u1","message":"x"} trailing', undef],
    [qq|{"userId":"u1","message":"\xff\xfe"}|, undef],
);

for my $case (@cases) {
    my ($body, $error) = @$case;
    (my $shown = substr $body, 0, 40) =~ s/[^\x20-\x7e]/?/g;
    json_is(api_post('/api/send-to-user', $body, status => 400,
                     desc => "POST '$shown'"),
            {error => defined $error ? $error : MATCHING(qr/\S/)},
            "'$shown': " . ($error // 'an error'));
}

$c->expect_silence(0.3, 'nothing was delivered');
--- no_error_log
[error]
[crit]



=== TEST 5: not JSON: 400, exactly
--- request
POST /api/send-to-user
{"userId":"u1","message":
--- more_headers
Content-Type: application/json
--- error_code: 400
--- response_headers
Content-Type: application/json
Content-Length: 38
--- response_body
{"error":"Request body must be JSON"}
--- no_error_log
[error]
[crit]



=== TEST 6: no userId: 400, exactly
--- request
POST /api/send-to-user
{"message":{"text":"hi"}}
--- more_headers
Content-Type: application/json
--- error_code: 400
--- response_headers
Content-Type: application/json
--- response_body
{"error":"Missing userId"}
--- no_error_log
[error]
[crit]



=== TEST 7: a JSON array is not a request: 400
--- request
POST /api/send-to-user
[{"userId":"u1","message":"x"}]
--- more_headers
Content-Type: application/json
--- error_code: 400
--- response_headers
Content-Type: application/json
--- response_body
{"error":"Request body must be a JSON object"}
--- no_error_log
[error]
[crit]



=== TEST 8: GET and PUT: 405 with Allow: POST
--- request eval
["GET /api/send-to-user",
 "PUT /api/send-to-user\n{\"userId\":\"u1\",\"message\":\"x\"}"]
--- error_code eval
[405, 405]
--- response_headers eval
["Allow: POST\nContent-Type: application/json",
 "Allow: POST\nContent-Type: application/json"]
--- response_body eval
[qq|{"error":"Method not allowed"}\n|, qq|{"error":"Method not allowed"}\n|]
--- no_error_log
[error]
[crit]



=== TEST 9: a body over client_max_body_size: 413; one at the limit is read
--- config
    location = /ws {
        ws_relay;
    }

    location = /api/send-to-user {
        client_max_body_size 64;
        ws_relay_api send;
    }

    location = /api/redis-info {
        ws_relay_api redis_info;
    }
--- ws_session
my $c = ws_open('/ws');
$c->call({type => 'register', userId => 'u1'});
wait_presence({$c->{pid} => ['u1']});

my $fits = '{"userId":"u1","message":"' . ('x' x 36) . '"}';
is(length $fits, 64, 'a body of exactly 64 bytes');
json_is(api_post('/api/send-to-user', $fits),
        {success => TRUE, delivered => 1, userId => 'u1'},
        '64 bytes: delivered');
is($c->recv_json->{message}, 'x' x 36, 'and received');

api_post('/api/send-to-user', '{"userId":"u1","message":"' . ('x' x 37) . '"}',
         status => 413, type => 'text/html', desc => '65 bytes');
api_post('/api/send-to-user', {userId => 'u1', message => 'y' x 100},
         chunked => 1, pieces => 4, status => 413, type => 'text/html',
         desc => 'over 64 bytes, chunked');
$c->expect_silence(0.3, 'nothing more was delivered');
--- error_log
client intended to send too large body: 65 bytes
client intended to send too large chunked body
--- no_error_log
[crit]
[alert]



=== TEST 10: a body sent slowly, in pieces
--- raw_request eval
my $body = '{"userId":"slow","message":{"text":"in pieces"}}';
::raw_post($body, substr($body, 0, 10), substr($body, 10, 20),
           substr($body, 30))
--- raw_request_middle_delay: 0.3
--- response_headers
Content-Type: application/json
Content-Length: 48
--- response_body
{"success":false,"delivered":0,"userId":"slow"}
--- no_error_log
[error]
[crit]



=== TEST 11: a chunked body sent slowly, in pieces
--- raw_request eval
["POST /api/send-to-user HTTP/1.1\r\nHost: localhost\r\n"
 . "Connection: close\r\nTransfer-Encoding: chunked\r\n"
 . "Content-Type: application/json\r\n\r\n",
 "a\r\n{\"userId\":\r\n", "8\r\n\"chunky\"\r\n",
 "e\r\n,\"message\":42}\r\n0\r\n\r\n"]
--- raw_request_middle_delay: 0.3
--- response_body
{"success":false,"delivered":0,"userId":"chunky"}
--- no_error_log
[error]
[crit]



=== TEST 12: slow and chunked bodies reach users on both workers
--- ws_session
my ($wa, $wb) = nginx_workers_up();
my @u = map { $_->[0] } ws_open_per_worker('/ws', 1);
$_->call({type => 'register', userId => 'patient'}) for @u;
wait_presence({$wa => ['patient'], $wb => ['patient']});

my %ways = (slow => [pieces => 5, delay => 0.15],
            chunked => [chunked => 1, pieces => 3],
            'slow chunked' => [chunked => 1, pieces => 4, delay => 0.15]);

for my $way (sort keys %ways) {
    json_is(api_post('/api/send-to-user',
                     {userId => 'patient', message => {way => $way}},
                     @{ $ways{$way} }),
            {success => TRUE, delivered => 2, userId => 'patient'},
            "$way: delivered 2");
    json_is($_, {type => 'notification', message => {way => $way},
                 sender => 'system', timestamp => NOW}, "$way: received")
        for next_json(2, @u);
}
--- no_error_log
[error]
[crit]



=== TEST 13: a body larger than client_body_buffer_size is read from its temporary file
--- config
    location = /ws {
        ws_relay;
    }

    location = /api/send-to-user {
        client_body_buffer_size 1k;
        ws_relay_api send;
    }

    location = /api/redis-info {
        ws_relay_api redis_info;
    }
--- ws_session
my ($wa, $wb) = nginx_workers_up();
my @u = map { $_->[0] } ws_open_per_worker('/ws', 1);
$_->call({type => 'register', userId => 'big'}) for @u;
wait_presence({$wa => ['big'], $wb => ['big']});

my $text = join '', map { chr(0x41 + $_ % 26) } 1 .. 200_000;
json_is(api_post('/api/send-to-user', {userId => 'big', message => $text}),
        {success => TRUE, delivered => 2, userId => 'big'},
        '200 KB message: delivered 2');
for my $m (next_json(3, @u)) {
    ok($m && $m->{message} eq $text, 'received whole');
}

json_is(api_post('/api/send-to-user', {userId => 'big', message => 'x' x 5000},
                 pieces => 3, delay => 0.1),
        {success => TRUE, delivered => 2, userId => 'big'},
        '5 KB in slow pieces, through the file too');
is($_ && $_->{message}, 'x' x 5000, 'received whole')
    for next_json(2, @u);
--- error_log
a client request body is buffered to a temporary file
--- no_error_log
[error]
[crit]



=== TEST 14: concurrent requests each get their own count
--- ws_session
my ($wa, $wb) = nginx_workers_up();
my ($A, $B) = ws_open_per_worker('/ws', 2);
$_->call({type => 'register', userId => 'many'}) for @$A;
$B->[0]->call({type => 'register', userId => 'few'});
wait_presence({$wa => ['many'], $wb => ['few']});

my @sent = map { my $u = $_ % 2 ? 'many' : 'few';
                 [$u, http_send('POST', '/api/send-to-user',
                                body => {userId => $u, message => "p$_"})] }
           1 .. 12;

for my $s (@sent) {
    my ($user, $h) = @$s;
    my $res = eval { http_read($h) };
    json_is(api_check($res, 'POST', desc => "POST to $user"),
            {success => TRUE, delivered => $user eq 'many' ? 2 : 1,
             userId => $user}, "$user: its own count");
}

for my $c (@$A) {
    my @got = sort map { $_->{message} } grep { defined }
              next_json(2, ($c) x 6);
    is("@got", 'p1 p11 p3 p5 p7 p9', 'a connection of "many" got its 6');
}
my @got = sort map { $_->{message} } grep { defined }
          next_json(2, ($B->[0]) x 6);
is("@got", 'p10 p12 p2 p4 p6 p8', 'the connection of "few" got its 6');
--- no_error_log
[error]
[crit]
