# After the 101 a connection is detached from its HTTP request, as nginx
# parks a keepalive connection: the request, its pool and the header
# buffers are freed. What must survive that: frames sent behind the
# handshake (also from nginx's large header buffers), the access log line
# (written with the 101), error log lines that still say which client,
# connection and user they are about, the close, and TLS (wss). Modules
# that tie state to the request (limit_conn, realip) keep it.

use Test::Nginx::Socket 'no_plan';
use File::Temp ();
use WsRelay::Test;
use WsRelay::Abuse;

ws_defaults(config => <<'_EOC_');
    location = /ws {
        ws_relay;
    }
_EOC_

# sends invalid JSON on $c: checks the error reply, returns the line the
# error log got for it since $mark
sub bad_json_log_line {
    my ($c, $mark) = @_;

    $c->send_text('{not json');
    json_is($c->recv_json, {type => 'error', message => STRING},
            'invalid JSON: an error');

    return wait_for(sub {
        (log_lines(qr/invalid message from client/, $mark))[0]
    }, 3);
}

log_level('info');
run_tests();

__DATA__

=== TEST 1: frames behind a handshake held in nginx's large header buffers
--- http_config
    client_header_buffer_size 1k;
    large_client_header_buffers 4 8k;
--- ws_session
my $frames = ws_json({type => 'register', userId => 'big'})
             . ws_json({type => 'ping'})
             . ws_json({type => 'chat', targetUserId => 'big', text => 'me'});

for my $pad (100, 3000, 7000) {
    my $c = ws_connect('/ws', headers => [ 'X-Pad' => 'p' x $pad ],
                       pipeline => $frames);

    json_is($c->recv_json, {type => 'welcome', message => 'connected',
                            connectionId => ID, processId => PID,
                            timestamp => NOW}, "$pad B header: welcome");
    json_is($c->recv_json, {type => 'register', status => 'success',
                            userId => 'big', timestamp => NOW},
            "$pad B header: register");
    json_is($c->recv_json, {type => 'pong', timestamp => NOW},
            "$pad B header: pong");

    my @m = ($c->recv_json, $c->recv_json);
    @m = reverse @m if $m[0]{type} ne 'chat';
    json_is($m[0], {type => 'chat', text => 'me', sender => 'big',
                    timestamp => NOW}, "$pad B header: the chat");
    json_is($m[1], {type => 'chat_delivered', targetUserId => 'big',
                    delivered => TRUE, timestamp => NOW},
            "$pad B header: delivered");

    # the connection goes on after the detach
    json_is($c->call({type => 'ping'}), {type => 'pong', timestamp => NOW},
            "$pad B header: a later ping");
    $c->close;
}
--- no_error_log
[error]
[crit]
[alert]



=== TEST 2: the access log has the 101 while the connection is open
--- ws_session
my $log = WsRelay::Test::server_root() . '/logs/access.log';
my $c = ws_open('/ws?session=open');

my $line = wait_for(sub {
    open my $in, '<', $log or return;
    my ($l) = grep { m{"GET /ws\?session=open HTTP/1\.1" 101 } } <$in>;
    return $l;
}, 3);

ok($line, 'the access log line of the upgrade is written');
json_is($c->call({type => 'ping'}), {type => 'pong', timestamp => NOW},
        'the connection is still open');
$c->close;
--- no_error_log
[error]
[crit]



=== TEST 3: error log lines name the client, connection and escaped user
--- ws_session
my $mark = log_mark();
my $c = ws_open('/ws');
my $user = qq{a "b"\n c\x{e9}};

$c->call({type => 'register', userId => $user});
my $line = ::bad_json_log_line($c, $mark);

my $context = ' while relaying WebSocket messages, client: 127.0.0.1,'
              . ' server: 0.0.0.0:' . server_port_now()
              . ", connection: $c->{id}, user: \"a%20%22b%22%0A%20c%C3%A9\"";
like($line // '', qr/\Q$context\E$/,
     'the line says which client, connection and user');

$c->close(1000);

ok(wait_for(sub {
    log_count(qr/ws relay: closed with 1000 after \d+ ms, \d+ bytes sent\Q$context\E$/,
              $mark)
}, 3), 'the close is logged at info with the code and duration');
--- no_error_log
[error]
[crit]



=== TEST 4: a connection that just drops is logged as 1006
--- ws_session
my $mark = log_mark();
my $c = ws_open('/ws');
my $id = $c->{id};

close $c->{sock};
$c->{eof} = 'closed here';

ok(wait_for(sub {
    log_count(qr/ws relay: closed with 1006 after .*connection: \Q$id\E/,
              $mark)
}, 3), 'closed with 1006');
--- no_error_log
[error]
[crit]



=== TEST 5: wss: chat over TLS, large messages, a clean close
--- ws_session
# the certificate lives outside the server root, which Test::Nginx removes
# and must find empty of anything it did not make itself
my $dir = File::Temp::tempdir('ws-relay-tls-XXXXXX', TMPDIR => 1, CLEANUP => 1);
system("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256"
       . " -nodes -keyout $dir/key.pem -out $dir/cert.pem -days 1"
       . " -subj /CN=localhost 2>/dev/null") == 0
    or die "openssl could not make a certificate\n";

my $n2 = nginx_instance(workers => 1, listen => 'ssl',
                        http_config => "    ssl_certificate $dir/cert.pem;\n"
                                       . "    ssl_certificate_key $dir/key.pem;");

my $a = $n2->ws_open('/ws', tls => 1);
my $b = $n2->ws_open('/ws', tls => 1);
$a->call({type => 'register', userId => 'a'});
$b->call({type => 'register', userId => 'b'});

for my $size (10, 20000, 100000) {
    my $text = 'x' x $size;

    json_is($a->call({type => 'chat', targetUserId => 'b', text => $text}),
            {type => 'chat_delivered', targetUserId => 'b', delivered => TRUE,
             timestamp => NOW}, "$size B chat over TLS: delivered");
    json_is($b->recv_json, {type => 'chat', text => $text, sender => 'a',
                            timestamp => NOW}, "$size B chat over TLS: received");
}

$a->close(1000);
$b->send_close(1000);
$b->expect_eof('the server closes the TLS connection');

my $log = $n2->error_log;
unlike($log, qr/\[(?:error|crit|alert|emerg)\]/, 'no errors in its log');
like($log, qr/closed with 1000 after/, 'both closes are logged');
$n2->stop;
--- no_error_log
[error]
[crit]



=== TEST 6: limit_conn counts WebSockets until they close (the request is kept)
--- http_config
    limit_conn_zone $binary_remote_addr zone=perip:1m;
--- config
    location = /ws {
        ws_relay;
        limit_conn perip 1;
    }
--- ws_session
my $first = ws_open('/ws');

my $second = ws_connect('/ws', expect_status => 503);
is($second->status, 503, 'a second WebSocket from the address: 503');

json_is($first->call({type => 'ping'}), {type => 'pong', timestamp => NOW},
        'the first one works');
$first->close;

ok(wait_for(sub { my $c = eval { ws_open('/ws') }; $c && $c->close; $c }, 3),
   'once it is closed, the address may connect again');
--- error_log
limiting connections by zone "perip"
--- no_error_log
[crit]
[alert]



=== TEST 7: realip: the address a proxy names stays on the connection's log lines
--- config
    set_real_ip_from  127.0.0.1;
    real_ip_header    X-Real-IP;

    location = /ws {
        ws_relay;
    }
--- ws_session
my $mark = log_mark();
my $c = ws_open('/ws', headers => ['X-Real-IP' => '192.0.2.7']);

my $line = ::bad_json_log_line($c, $mark);
like($line // '', qr/client: 192\.0\.2\.7, /, 'the line names the real client');
$c->close;
--- no_error_log
[error]
[crit]
