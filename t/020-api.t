# The HTTP API's read routes: /api/health, /api/connections and
# /api/redis-info report the whole nginx instance, every worker; HEAD,
# wrong methods, and the API behind allow/deny and auth_request.

use Test::Nginx::Socket 'no_plan';
use WsRelay::Test;
use WsRelay::Redis;
use WsRelay::Api;

# workers in pid order, as nginx_workers_up() lists them
sub by_pid { [ sort { $a->{pid} <=> $b->{pid} } @{ $_[0] } ] }

# "2026-11-28T15:25:55.644Z" within $secs of now
sub iso_near_now {
    my ($v, $secs) = @_;

    return 0 unless defined $v
        && $v =~ /^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.\d{3})?Z$/;
    require Time::Local;
    my $t = eval { Time::Local::timegm($6, $5, $4, $3, $2 - 1, $1) };
    return defined $t && abs($t - time) <= $secs;
}

redis_start();
api_defaults(http_config => <<'_EOC_');
    ws_relay_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT prefix=$TEST_NGINX_RELAY_PREFIX;
    ws_relay_max_connections 50;
_EOC_

master_on();
workers(2);
log_level('info');
run_tests();

__DATA__

=== TEST 1: health: the seed's fields first, then every worker and the Redis state
--- ws_session
my @pids = nginx_workers_up();
is(scalar @pids, 2, 'two workers');

my $h = api_wait('/api/health', sub { $_[0]{status} eq 'ok' },
                 reply => \my $res);
is(join(' ', json_keys($res->{body})),
   'status uptime timestamp activeConnections maxConnections workers redis',
   'the keys, in order');

ok(main::iso_near_now($h->{timestamp}, 5),
   "timestamp is ISO 8601 UTC within 5 s of now: $h->{timestamp}");
ok($h->{uptime} == int($h->{uptime} // -1) && $h->{uptime} >= 0
   && $h->{uptime} <= 30, 'uptime: whole seconds since this nginx started');

$h->{workers} = main::by_pid($h->{workers});
json_is($h, {status => 'ok', uptime => NUMBER, timestamp => STRING,
             activeConnections => 0, maxConnections => 100,
             workers => [ map { {pid => $_ + 0, connections => 0, users => 0,
                                 redis => 'connected'} } @pids ],
             redis => {state => 'connected', lastError => ''}},
        'health: ok, 2 x 50 connections at most, both workers connected');
--- no_error_log
[error]
[crit]



=== TEST 2: health and connections count every worker's connections and users, whichever worker answers
--- ws_session
my ($wa, $wb) = nginx_workers_up();
api_wait('/api/health', sub { $_[0]{status} eq 'ok' });
my ($A, $B) = ws_open_per_worker('/ws', 3);
my @A = @$A;
my @B = @$B;

$A[0]->call({type => 'register', userId => 'u-a'});
$A[1]->call({type => 'register', userId => 'u-a'});
$A[2]->call({type => 'register', userId => 'u-both'});
$B[0]->call({type => 'register', userId => 'u-b'});
$B[1]->call({type => 'register', userId => 'u-both'});

my $want = {activeConnections => 6, maxConnections => 100,
            workers => [{pid => $wa + 0, connections => 3, users => 2,
                         redis => 'connected'},
                        {pid => $wb + 0, connections => 3, users => 2,
                         redis => 'connected'}]};

api_wait('/api/connections', sub { $_[0]{activeConnections} == 6 });

for my $i (1 .. 8) {
    my $c = api_get('/api/connections');
    $c->{workers} = main::by_pid($c->{workers} || []);
    json_is($c, $want, "connections, request $i: 3 + 3, users 2 + 2");
}

my $h = api_get('/api/health');
is($h->{activeConnections}, 6, 'health agrees: 6');
json_is(main::by_pid($h->{workers}), $want->{workers},
        'health: the same breakdown');

# redis-info names the worker that answers: both answer the same figures
my %answered;
for (1 .. 100) {
    my $r = api_get('/api/redis-info');
    my $pid = $r->{processId} // 'none';
    next if $answered{$pid}++;
    is($r->{localConnections}, 6, "worker $pid answers 6 connections");
    json_is(main::by_pid($r->{workers}), $want->{workers},
            "worker $pid answers the same breakdown");
    last if keys %answered == 2;
}
is(join(' ', sort keys %answered), "$wa $wb", 'both workers answered');

# a clean close on one worker, two dropped TCP connections on the other
$A[0]->close;
CORE::close($B[0]->{sock});
CORE::close($B[2]->{sock});

my $c = api_wait('/api/connections',
                 sub { $_[0]{activeConnections} == 3
                       && !grep { $_->{users} != ($_->{pid} == $wa ? 2 : 1) }
                          @{ $_[0]{workers} } });
$c->{workers} = main::by_pid($c->{workers});
json_is($c, {activeConnections => 3, maxConnections => 100,
             workers => [{pid => $wa + 0, connections => 2, users => 2,
                          redis => 'connected'},
                         {pid => $wb + 0, connections => 1, users => 1,
                          redis => 'connected'}]},
        'after the closes: 2 + 1 connections; u-b is gone, u-a is not');
--- no_error_log
[error]
[crit]



=== TEST 3: Redis configured but down: degraded, the reason, local delivery goes on, redis-info 503
--- http_config
    ws_relay_redis 127.0.0.1:$TEST_NGINX_RAND_PORT_1 timeout=200ms prefix=$TEST_NGINX_RELAY_PREFIX;
    ws_relay_max_connections 50;
--- ws_session
my ($wa, $wb) = nginx_workers_up();
my ($ca, $cb) = map { $_->[0] } ws_open_per_worker('/ws', 1);
$_->call({type => 'register', userId => 'carol'}) for $ca, $cb;

my $h = api_wait('/api/health', sub { $_[0]{redis}{lastError} ne '' },
                 reply => \my $res);
is(join(' ', json_keys($res->{body})),
   'status uptime timestamp activeConnections maxConnections workers redis',
   'the keys, in order');
$h->{workers} = main::by_pid($h->{workers});
my $not_up = MATCHING(qr/^(?:disconnected|connecting)$/);
json_is($h, {status => 'degraded', uptime => NUMBER, timestamp => STRING,
             activeConnections => 2, maxConnections => 100,
             workers => [ map { {pid => $_ + 0, connections => 1, users => 1,
                                 redis => $not_up} } $wa, $wb ],
             redis => {state => 'degraded',
                       lastError => MATCHING(qr/could not connect/)}},
        'health: degraded, with the Redis error');

# only the worker that takes the request can reach carol now
json_is(api_post('/api/send-to-user', {userId => 'carol', message => 'm1'}),
        {success => TRUE, delivered => 1, userId => 'carol'},
        'send-to-user still delivers on the worker that answers');
my @got = grep { defined } map { $_->next_message(0.5) } $ca, $cb;
is(scalar @got, 1, 'exactly one of the two connections got it');
json_is(eval { JSON::PP::decode_json($got[0]{data}) },
        {type => 'notification', message => 'm1', sender => 'system',
         timestamp => NOW}, 'the message') if @got;

json_is(api_get('/api/redis-info', status => 503),
        {error => 'Redis is unavailable'}, 'redis-info: 503');
--- error_log
redis commands link: could not connect
--- no_error_log
[crit]
[alert]



=== TEST 4: without Redis: health says "disabled"; redis-info answers with the users of the worker that answers
--- http_config
    ws_relay_max_connections 50;
--- ws_session
my ($wa, $wb) = nginx_workers_up();
my ($A, $B) = ws_open_per_worker('/ws', 2);
$A->[0]->call({type => 'register', userId => 'ann'});
$A->[1]->call({type => 'register', userId => 'amy'});
$B->[0]->call({type => 'register', userId => 'bob'});
my %users = ($wa => ['amy', 'ann'], $wb => ['bob']);

my $h = api_wait('/api/health', sub { $_[0]{activeConnections} == 4 });
$h->{workers} = main::by_pid($h->{workers});
json_is($h, {status => 'ok', uptime => NUMBER, timestamp => STRING,
             activeConnections => 4, maxConnections => 100,
             workers => [{pid => $wa + 0, connections => 2, users => 2,
                          redis => 'disabled'},
                         {pid => $wb + 0, connections => 2, users => 1,
                          redis => 'disabled'}],
             redis => {state => 'disabled', lastError => ''}},
        'health: ok, Redis disabled');

for my $i (1 .. 6) {
    my $r = api_get('/api/redis-info', reply => \my $res);
    my $pid = $r->{processId} // '';
    ok($pid eq $wa || $pid eq $wb,
       "request $i: processId \"$pid\" is a worker");
    next unless $users{$pid};

    is(join(' ', (json_keys($res->{body}))[0 .. 3]),
       'processId userProcesses processUsers localConnections',
       "request $i: the seed's keys first");
    $_ = [sort @$_] for values %{ $r->{processUsers} };
    delete $r->{nodes};
    delete $r->{workers};
    json_is($r, {processId => "$pid",
                 userProcesses => { map { $_ => "$pid" } @{ $users{$pid} } },
                 processUsers => { $pid => $users{$pid} },
                 localConnections => 4, redis => 'disabled'},
            "request $i: the users of worker $pid only");
}
--- no_error_log
[error]
[crit]



=== TEST 5: redis-info: users of every worker, from Redis
--- ws_session
my ($wa, $wb) = nginx_workers_up();
api_wait('/api/health', sub { $_[0]{status} eq 'ok' });
my ($A, $B) = ws_open_per_worker('/ws', 3);
$A->[0]->call({type => 'register', userId => 'ann'});
$A->[1]->call({type => 'register', userId => 'ann'});
$A->[2]->call({type => 'register', userId => 'both'});
$B->[0]->call({type => 'register', userId => 'bob'});
$B->[1]->call({type => 'register', userId => 'both'});

my $want = { $wa => ['ann', 'both'], $wb => ['bob', 'both'] };
my $same = sub {
    my $pu = shift->{processUsers};
    return keys %$pu == 2 && !grep { join(',', sort @{ $pu->{$_} || [] })
                                     ne join(',', @{ $want->{$_} || [] }) }
                                   keys %$pu;
};

my $r = api_wait('/api/redis-info', $same, reply => \my $res);
is(join(' ', (json_keys($res->{body}))[0 .. 3]),
   'processId userProcesses processUsers localConnections',
   "the seed's keys first");

my %nodes = %{ delete $r->{nodes} || {} };
is(join(' ', sort map { /-(\d+)-[^-]+$/ ? $1 : $_ } keys %nodes), "$wa $wb",
   'nodes: one per worker, named host-pid-start');

$_ = [sort @$_] for values %{ $r->{processUsers} };
$r->{workers} = main::by_pid($r->{workers});
json_is($r, {processId => MATCHING(qr/^(?:$wa|$wb)$/),
             userProcesses => {ann => "$wa", bob => "$wb",
                               both => MATCHING(qr/^(?:$wa|$wb)$/)},
             processUsers => $want,
             localConnections => 6,
             workers => [{pid => $wa + 0, connections => 3, users => 2,
                          redis => 'connected'},
                         {pid => $wb + 0, connections => 3, users => 2,
                          redis => 'connected'}],
             redis => 'connected'},
        'both workers\' users; localConnections counts the instance');

# a user leaves on one worker only
$B->[1]->close;
$r = api_wait('/api/redis-info',
                sub { !grep { $_ eq 'both' } @{ $_[0]{processUsers}{$wb} } });
$_ = [sort @$_] for values %{ $r->{processUsers} };
json_is($r->{processUsers}, { $wa => ['ann', 'both'], $wb => ['bob'] },
        'after "both" left worker b');
is($r->{userProcesses}{both}, "$wa", '"both" now maps to worker a');
--- no_error_log
[error]
[crit]



=== TEST 6: HEAD on every GET route: the GET's headers and Content-Length, no body
--- ws_session
my $c = ws_open('/ws');
$c->call({type => 'register', userId => 'h1'});
wait_presence({$c->{pid} => ['h1']});

for my $path (qw(/api/health /api/connections /api/redis-info /api/metrics)) {
    my $type = $path eq '/api/metrics' ? 'text/plain; version=0.0.4'
                                       : 'application/json';
    api_call('GET', $path, type => $type, reply => \my $get);
    api_call('HEAD', $path, type => $type, reply => \my $head);
    next unless $get && $head;

    is(http_header($head, 'Content-Length'), length $get->{body},
       "HEAD $path: Content-Length of the GET body");
}
--- no_error_log
[error]
[crit]



=== TEST 7: HEAD /api/health, as a plain request
--- request
HEAD /api/health
--- response_headers
Content-Type: application/json
--- response_headers_like
Content-Length: [1-9]\d*
--- response_body
--- no_error_log
[error]
[crit]



=== TEST 8: a wrong method on a GET route: 405, Allow, a JSON error
--- request
PUT /api/health
{"status":"down"}
--- error_code: 405
--- response_headers
Allow: GET, HEAD
Content-Type: application/json
Content-Length: 31
--- response_body
{"error":"Method not allowed"}
--- no_error_log
[error]
[crit]



=== TEST 9: every route refuses the methods it does not serve
--- ws_session
for my $path (qw(/api/health /api/connections /api/redis-info /api/metrics)) {
    for my $method (qw(POST PUT DELETE PATCH)) {
        my $j = api_call($method, $path, status => 405, reply => \my $res,
                         body => '{}');
        is(http_header($res, 'Allow'), 'GET, HEAD', "$method $path: Allow");
        json_is($j, {error => 'Method not allowed'}, "$method $path: error");
    }
}

for my $method (qw(GET HEAD PUT DELETE)) {
    my $j = api_call($method, '/api/send-to-user', status => 405,
                     reply => \my $res,
                     body => $method eq 'PUT' ? {userId => 'u', message => 'm'}
                                              : undef);
    is(http_header($res, 'Allow'), 'POST', "$method /api/send-to-user: Allow");
    json_is($j, {error => 'Method not allowed'},
            "$method /api/send-to-user: error") unless $method eq 'HEAD';
}
--- no_error_log
[error]
[crit]



=== TEST 10: behind "allow 127.0.0.1; deny all;": every route answers 127.0.0.1
--- config
    location = /ws {
        ws_relay;
    }

    location /api/ {
        allow 127.0.0.1;
        deny  all;

        location = /api/health       { ws_relay_api health; }
        location = /api/connections  { ws_relay_api connections; }
        location = /api/send-to-user { ws_relay_api send; }
        location = /api/redis-info   { ws_relay_api redis_info; }
        location = /api/metrics      { ws_relay_api metrics; }
    }
--- ws_session
my $c = ws_open('/ws');
$c->call({type => 'register', userId => 'al'});
wait_presence({$c->{pid} => ['al']});

is(api_get('/api/health')->{activeConnections}, 1, 'health');
is(api_get('/api/connections')->{activeConnections}, 1, 'connections');
ok(api_get('/api/redis-info')->{processId}, 'redis-info');
like(metrics_get(), qr/^ws_relay_connections\{/m, 'metrics');
json_is(api_post('/api/send-to-user', {userId => 'al', message => 'hi'}),
        {success => TRUE, delivered => 1, userId => 'al'}, 'send-to-user');
json_is($c->recv_json, {type => 'notification', message => 'hi',
                        sender => 'system', timestamp => NOW},
        'the message arrived');
--- no_error_log
[error]
[crit]



=== TEST 11: an address the rules deny gets 403 on every route; the WebSocket location is not affected
--- config
    location = /ws {
        ws_relay;
    }

    location /api/ {
        deny  127.0.0.1;
        allow all;

        location = /api/health       { ws_relay_api health; }
        location = /api/connections  { ws_relay_api connections; }
        location = /api/send-to-user { ws_relay_api send; }
        location = /api/redis-info   { ws_relay_api redis_info; }
        location = /api/metrics      { ws_relay_api metrics; }
    }
--- ws_session
my $c = ws_open('/ws');
$c->call({type => 'register', userId => 'al'});

for my $path (qw(/api/health /api/connections /api/redis-info /api/metrics)) {
    api_call('GET', $path, status => 403, type => 'text/html');
}
api_call('POST', '/api/send-to-user', status => 403, type => 'text/html',
         body => {userId => 'al', message => 'should not arrive'});
$c->expect_silence(0.3, 'nothing was delivered');
json_is($c->call({type => 'ping'}), {type => 'pong', timestamp => NOW},
        'the WebSocket still works');
--- error_log
access forbidden by rule
--- no_error_log
[crit]
[alert]



=== TEST 12: behind auth_request: 401 without the right key, the route with it
--- config
    location = /ws {
        ws_relay;
    }

    location = /auth {
        internal;

        if ($http_x_api_key = "s3cret") {
            return 204;
        }

        return 401;
    }

    location /api/ {
        auth_request /auth;

        location = /api/health       { ws_relay_api health; }
        location = /api/connections  { ws_relay_api connections; }
        location = /api/send-to-user { ws_relay_api send; }
        location = /api/redis-info   { ws_relay_api redis_info; }
        location = /api/metrics      { ws_relay_api metrics; }
    }
--- ws_session
my $c = ws_open('/ws');
$c->call({type => 'register', userId => 'al'});
my @key = (headers => ['X-Api-Key' => 's3cret']);
my @bad = (headers => ['X-Api-Key' => 'guess']);
wait_presence({$c->{pid} => ['al']}, @key);

for my $path (qw(/api/health /api/connections /api/redis-info /api/metrics)) {
    api_call('GET', $path, status => 401, type => 'text/html');
    api_call('GET', $path, status => 401, type => 'text/html', @bad);
}

is(api_get('/api/health', @key)->{activeConnections}, 1, 'health with the key');
is(api_get('/api/connections', @key)->{activeConnections}, 1,
   'connections with the key');
ok(api_get('/api/redis-info', @key)->{processId}, 'redis-info with the key');
like(metrics_get(@key), qr/^ws_relay_connections\{/m, 'metrics with the key');

api_call('POST', '/api/send-to-user', status => 401, type => 'text/html',
         body => {userId => 'al', message => 'no key'});
$c->expect_silence(0.3, 'a refused send delivers nothing');

json_is(api_post('/api/send-to-user', {userId => 'al', message => 'key'},
                 @key, pieces => 3, delay => 0.1),
        {success => TRUE, delivered => 1, userId => 'al'},
        'send-to-user with the key, body in slow pieces');
json_is($c->recv_json, {type => 'notification', message => 'key',
                        sender => 'system', timestamp => NOW},
        'the message arrived');
--- no_error_log
[error]
[crit]



=== TEST 13: Redis down for a while: failed connects give their nginx connection back, the workers keep accepting
--- http_config
    ws_relay_redis 127.0.0.1:$TEST_NGINX_RAND_PORT_1 timeout=100ms prefix=$TEST_NGINX_RELAY_PREFIX;
    ws_relay_max_connections 50;
--- ws_session
# about 8 failed connects per link and worker
sleep 2;

my @clients;
for my $i (1 .. 40) {
    my $c = eval { ws_connect('/ws', timeout => 2) } or last;
    my $m = eval { $c->recv_json(2) } or last;
    last unless ($m->{type} // '') eq 'welcome';
    push @clients, $c;
}
is(scalar @clients, 40, '40 clients welcomed (worker_connections is 64)');

my $h = api_wait('/api/health', sub { $_[0]{activeConnections} == 40 });
is($h->{activeConnections}, 40, 'health counts them');
is($h->{status}, 'degraded', 'and Redis is still down');
--- error_log
redis subscriber link: could not connect
--- no_error_log
[alert]
[crit]



=== TEST 14: a worker killed by SIGKILL: its replacement takes its place in the figures
--- ws_session
my ($wa, $wb) = nginx_workers_up();
my ($A, $B) = ws_open_per_worker('/ws', 1);
$A->[0]->call({type => 'register', userId => 'gone'});
$B->[0]->call({type => 'register', userId => 'stays'});

kill 'KILL', $wa;
ok(wait_for(sub { my @p = nginx_worker_pids();
                  @p == 2 && !grep { $_ == $wa } @p }, 5),
   'the master replaced the worker');
my ($n1, $n2) = nginx_workers_up();
my $new = $n1 == $wb ? $n2 : $n1;

my $h = api_wait('/api/health',
                 sub { $_[0]{status} eq 'ok' && @{ $_[0]{workers} } == 2
                       && !grep { $_->{pid} == $wa } @{ $_[0]{workers} } });
$h->{workers} = main::by_pid($h->{workers});
json_is($h->{workers},
        main::by_pid([{pid => $wb + 0, connections => 1, users => 1,
                       redis => 'connected'},
                      {pid => $new + 0, connections => 0, users => 0,
                       redis => 'connected'}]),
        'the dead worker is gone, the new one starts from zero');
is($h->{activeConnections}, 1, 'activeConnections: the survivor\'s only');

my $c = api_get('/api/connections');
is($c->{activeConnections}, 1, 'connections agrees');
--- error_log
[alert]
exited on signal 9
--- no_error_log
[crit]



=== TEST 15: a reload: the figures and Redis presence are the new workers' only
--- ws_session
my @old = nginx_workers_up();
my ($A, $B) = ws_open_per_worker('/ws', 1);
$A->[0]->call({type => 'register', userId => 'old-a'});
$B->[0]->call({type => 'register', userId => 'old-b'});
api_wait('/api/redis-info', sub { keys %{ $_[0]{userProcesses} } == 2 });

kill 'HUP', nginx_pid();
for my $c (@$A, @$B) {
    $c->expect_close(1001, 'reload: going away');
}
ok(wait_for(sub { !grep { kill 0, $_ } @old }, 5),
   'the old workers exited');

my @new = nginx_workers_up();
my $h = api_wait('/api/health',
                 sub { $_[0]{status} eq 'ok' && @{ $_[0]{workers} } == 2 });
json_is(main::by_pid($h->{workers}),
        [ map { {pid => $_ + 0, connections => 0, users => 0,
                 redis => 'connected'} } @new ],
        'health: the new workers, from zero');

my $r = api_wait('/api/redis-info',
                 sub { keys %{ $_[0]{processUsers} } == 2 }, secs => 3);
is(join(' ', sort keys %{ $r->{processUsers} }), join(' ', sort @new),
   'redis-info: the old workers\' presence went with them');
json_is($r->{userProcesses}, {}, 'redis-info: no users left');
--- no_error_log
[error]
[crit]



=== TEST 16: nginx.conf.example's error pages: nginx's own 403, 404 and 413 in JSON
--- http_config
    map $status $api_error_message {
        403      "Forbidden";
        404      "Not found";
        413      "Request body too large";
        default  "Error";
    }
--- config
    location /api/ {
        deny  127.0.0.2;
        allow all;
        client_max_body_size 64;

        location = /api/health       { ws_relay_api health; }
        location = /api/send-to-user { ws_relay_api send; }
        location = /api/denied       { deny all; ws_relay_api health; }

        error_page  403 404 413  @api_error;

        return 404;
    }

    location @api_error {
        default_type  application/json;
        return  200 '{"error":"$api_error_message"}\n';
    }
--- ws_session
json_is(api_call('GET', '/api/nope', status => 404),
        {error => 'Not found'}, 'an unknown route: 404 in JSON');
json_is(api_call('GET', '/api/denied', status => 403),
        {error => 'Forbidden'}, 'denied: 403 in JSON');
json_is(api_call('POST', '/api/send-to-user', status => 413,
                 body => {userId => 'u', message => 'x' x 100}),
        {error => 'Request body too large'}, 'too large: 413 in JSON');

# the module's own answers are not touched
api_call('GET', '/api/health', status => 200);
json_is(api_call('POST', '/api/send-to-user', status => 400,
                 body => {message => 'x'}),
        {error => 'Missing userId'}, 'the module\'s 400 as before');
api_call('PUT', '/api/health', status => 405);
--- error_log
access forbidden by rule
--- no_error_log
[crit]
[alert]
