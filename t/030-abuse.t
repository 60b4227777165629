# Abuse: clients that misbehave on purpose, each in a child process, while
# well-behaved clients on every worker keep pinging and chatting (on one
# worker and across workers, through Redis) and every round trip stays
# under 2 s: slowloris, enormous handshakes, readers that never read,
# ping floods, register churn at 10k/s, and floods over
# ws_relay_limit_rate.

use Test::Nginx::Socket 'no_plan';
use WsRelay::Test;
use WsRelay::Redis;
use WsRelay::Abuse;

redis_start();
abuse_defaults();

master_on();
workers(2);
worker_connections(4096);
log_level('info');
no_shuffle();
run_tests();

__DATA__

=== TEST 1: slowloris: 500 unfinished request lines, closed by client_header_timeout
--- http_config
    ws_relay_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT prefix=$TEST_NGINX_ABUSE_PREFIX;
    ws_relay_max_connections 20;
--- config
    client_header_timeout 2s;
    location = /ws {
        ws_relay;
    }
--- ws_session
my $probe = probe_open();
my $mark = log_mark();

my $abuse = abuse_fork(sub {
    my $ctl = shift;
    my %open;

    # "GET /", then one more byte of the URI every 0.2 s: never a line
    for (1 .. 500) {
        my $sock = raw_connect();
        syswrite($sock, 'GET /');
        $open{fileno $sock} = { sock => $sock, t0 => time };
    }
    $ctl->ready(open => scalar keys %open);

    my $opened = keys %open;
    my ($answered, @life) = (0);
    my $end = time + 12;

    while (%open && time < $end) {
        my $sel = IO::Select->new(map { $_->{sock} } values %open);

        for my $sock ($sel->can_read(0)) {
            my $n = sysread($sock, my $buf, 4096);
            $answered++ if $n;
            my $s = delete $open{fileno $sock};
            push @life, time - $s->{t0};
            close $sock;
        }

        # a write error shows as readable (EOF or error) next time
        syswrite($_->{sock}, 'a') for values %open;
        sleep 0.2;
    }

    @life = sort { $a <=> $b } @life;
    return { opened => $opened, closed => scalar @life,
             answered => $answered, min => $life[0], max => $life[-1] };
}, name => 'slowloris');

is($abuse->wait_ready(10)->{open}, 500, '500 slowloris connections open');

my $stats = $probe->during($abuse, min => 1, max => 15);
$probe->ok_responsive($stats, what => 'the slowloris');

my $r = $abuse->result(15);
is($r->{closed}, 500, 'the server closed all 500');
ok($r->{min} >= 1.5 && $r->{max} < 4.5,
   sprintf('each after client_header_timeout 2s (%.2f .. %.2f s)',
           $r->{min}, $r->{max}));
is($r->{answered}, 0, 'without an answer');
is(log_count(qr/client timed out .* while reading client request line/,
             $mark), 500, '500 "client timed out" lines');

# the slowloris held no slot of ws_relay_max_connections 20 per worker
my @more = map { ws_open('/ws') } 1 .. 10;
json_is($_->call({type => 'ping'}), {type => 'pong', timestamp => NOW},
        'a new client works') for @more[0, -1];
$_->close for @more;

$probe->close;
--- error_log
client timed out (110: Connection timed out) while reading client request line
--- no_error_log
[error]
[crit]
[alert]
[emerg]



=== TEST 2: enormous handshakes: 400/414 from nginx, 101 within large_client_header_buffers
--- config
    location = /ws {
        ws_relay;
        ws_relay_deflate on;
    }
--- ws_session
my $probe = probe_open();
my $mark = log_mark();

my %req = (
    line => ws_handshake('/ws', 'X-Big' => 'a' x 65536),
    uri  => ws_handshake('/ws?' . 'a' x 32768),
    many => ws_handshake('/ws', map { ("X-Pad-$_" => 'b' x 1000) } 1 .. 200),
    # within 4 x 8k: 9 kB of headers and a 7 kB list of extension offers
    big  => ws_handshake('/ws', (map { ("X-Pad-$_" => 'c' x 900) } 1 .. 10),
                         'Sec-WebSocket-Extensions' => join(', ',
                             ('permessage-deflate; client_max_window_bits')
                             x 150)),
);

my $abuse = abuse_fork(sub {
    my $ctl = shift;
    my (%st, $n);

    $ctl->ready;
    my $end = time + 3;

    while (time < $end) {
        for my $k (sort keys %req) {
            my $r = raw_request($req{$k});
            $st{$k}{ $r->{status} // $r->{why} }++;
            $n++;
        }
    }

    return { requests => $n, status => \%st };
}, name => 'enormous headers');

$abuse->wait_ready;
my $stats = $probe->during($abuse, min => 1);
$probe->ok_responsive($stats, what => 'the enormous handshakes');

my $r = $abuse->result;
ok($r->{requests} >= 40, "$r->{requests} enormous handshakes in 3 s");
my $st = $r->{status};
is(join(' ', sort keys %{ $st->{line} }), '400', '64 KiB header line: 400')
    or diag explain $st->{line};
is(join(' ', sort keys %{ $st->{uri} }), '414', '32 KiB URI: 414')
    or diag explain $st->{uri};
is(join(' ', sort keys %{ $st->{many} }), '400', '200 KiB of headers: 400')
    or diag explain $st->{many};
is(join(' ', sort keys %{ $st->{big} }), '101',
   'big but within large_client_header_buffers: 101')
    or diag explain $st->{big};

ok(log_count(qr/client sent too long header line/, $mark)
   >= $st->{line}{400} + $st->{many}{400},
   '"client sent too long header line" for each 400');
ok(log_count(qr/client sent too long URI/, $mark) >= $st->{uri}{414},
   '"client sent too long URI" for each 414');

$probe->close;
--- error_log
client sent too long URI
--- no_error_log
[error]
[crit]
[alert]
[emerg]



=== TEST 3: readers that never read: closed with 1008 at ws_relay_send_buffer while everyone else keeps flowing
--- http_config
    ws_relay_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT prefix=$TEST_NGINX_ABUSE_PREFIX;
    ws_relay_close_timeout 2s;
--- config
    location = /ws {
        ws_relay;
        ws_relay_send_buffer 64k;
    }
    location = /api/connections {
        ws_relay_api connections;
    }
--- ws_session
my $probe = probe_open();
my $mark = log_mark();

my $abuse = abuse_fork(sub {
    my $ctl = shift;

    my $open = sub {
        my ($user, @opts) = @_;
        my $c = ws_connect('/ws', @opts);
        $c->recv_json;
        my $r = $c->call({type => 'register', userId => $user});
        die "register $user failed\n" unless $r->{status} eq 'success';
        $c->{user} = $user;
        return $c;
    };

    # 8 readers that stop reading after their register reply, one that
    # reads everything, one that floods all of them with 16 kB chats
    my @slow = map { $open->("slow-$_", rcvbuf => 4096) } 1 .. 8;
    my $good = $open->('good');
    my $f = ws_connect('/ws');
    $f->recv_json;

    # every worker routes every user before the flood
    for my $user ('good', map { $_->{user} } @slow) {
        my $deadline = time + 3;
        until ($f->call({type => 'chat', targetUserId => $user,
                         text => 'hi'})->{delivered}) {
            die "$user is not routed\n" if time > $deadline;
            sleep 0.05;
        }
    }
    $good->recv_json;

    $ctl->ready;

    my $text = 'z' x 16000;
    my %alive = map { $_->{user} => 1 } @slow;
    my %delivered;
    my ($good_sent, $good_got, $good_bad) = (0, 0, 0);
    my $end = time + 25;

    my $drain = sub {
        my $t = shift;
        while (my $m = $good->next_message($t)) {
            die "good: " . WsRelay::Test::Client::describe($m) . "\n"
                unless $m->{type} eq 'text';
            my ($n) = $m->{data} =~ /"text":"(\d+) /;
            $good_bad++ unless defined $n && $n == $good_got + 1;
            $good_got++;
        }
    };

    while (%alive && time < $end) {
        my @to = ((sort keys %alive), 'good');
        $f->send_raw(join '', map {
            ws_json({type => 'chat', targetUserId => $_,
                     text => ($_ eq 'good' ? ++$good_sent . ' ' : '')
                             . $text}) } @to);

        for (@to) {
            my $r = $f->recv_json(10);
            die "flooder: got $r->{type}\n"
                unless $r->{type} eq 'chat_delivered';
            my $to = $r->{targetUserId};
            if ($r->{delivered}) {
                $delivered{$to}++;
            } elsif ($to eq 'good') {
                die "good: a chat was not delivered\n";
            } else {
                delete $alive{$to};
            }
        }

        $drain->(0.001);
    }

    $drain->(0.5) while $good_got < $good_sent && time < $end + 5;

    # what the slow readers got before the end of their connection
    my %slow;
    for my $c (@slow) {
        my ($chats, $end) = (0, 'nothing');
        $c->recv_json;      # the warm-up chat
        while (my $m = $c->next_message(5)) {
            $chats++, next if $m->{type} eq 'text';
            $end = $m->{type} eq 'close' ? "close $m->{code}" : 'eof';
            last;
        }
        $slow{ $c->{user} } = { delivered => $delivered{ $c->{user} } // 0,
                                got => $chats, end => $end };
    }

    return { alive => [ sort keys %alive ], slow => \%slow,
             good_sent => $good_sent, good_got => $good_got,
             good_bad => $good_bad // 0 };
}, name => 'never-reading clients');

$abuse->wait_ready(15);
my $stats = $probe->during($abuse, min => 1, max => 40);
$probe->ok_responsive($stats, what => 'the flood to readers that never read');

my $r = $abuse->result(15);
is("@{ $r->{alive} }", '', 'every slow reader was closed');
for my $user (sort keys %{ $r->{slow} }) {
    my $s = $r->{slow}{$user};
    ok($s->{end} eq 'close 1008' || $s->{end} eq 'eof',
       "$user: got $s->{got} of $s->{delivered} delivered 16 kB chats,"
       . " then $s->{end}");
    ok($s->{got} <= $s->{delivered},
       "$user: nothing beyond what was reported delivered");
}
ok($r->{good_sent} > 100, "the good reader was sent $r->{good_sent} chats");
is($r->{good_got}, $r->{good_sent}, 'the good reader got every one');
is($r->{good_bad}, 0, 'in order');

is(log_count(qr/send queue over 65536 bytes, closing with 1008/, $mark), 8,
   '8 "send queue over 65536 bytes, closing with 1008" lines');

$abuse->finish;
ok(wait_for(sub { api_connections()->{activeConnections} == 4 }, 5),
   'only the probes are left');
$probe->close;
--- error_log
send queue over 65536 bytes, closing with 1008
--- no_error_log
[error]
[crit]
[alert]
[emerg]



=== TEST 4: ping floods: 20000 pings get 20000 pongs; a flooder that never reads is closed with 1008
--- http_config
    ws_relay_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT prefix=$TEST_NGINX_ABUSE_PREFIX;
    ws_relay_close_timeout 1s;
--- config
    location = /ws {
        ws_relay;
        ws_relay_send_buffer 64k;
    }
--- ws_session
my $probe = probe_open();
my $mark = log_mark();

my $reader = abuse_fork(sub {
    my $ctl = shift;
    my $c = ws_connect('/ws');
    $c->recv_json;
    $ctl->ready;

    my ($n, $got, $bad) = (20000, 0, 0);
    my $take = sub {
        my $t = shift;
        while (my $f = $c->next_frame($t)) {
            die "ping flood: $f->{name}\n" unless $f->{name} eq 'pong';
            $bad++ unless $f->{payload} eq "p$got";
            $got++;
            $t = 0.001;
        }
    };

    for (my $i = 0; $i < $n; $i += 500) {
        $c->send_raw(join '', map { ws_ping("p$_") } $i .. $i + 499);
        $take->(0.001);
    }
    $take->(5) while $got < $n && !$c->{eof};

    json_is_ok: {
        my $m = $c->call({type => 'ping'});
        die "no pong after the flood\n" unless $m->{type} eq 'pong';
    }

    return { sent => $n, pongs => $got, bad => $bad };
}, name => 'ping flood (reading)');

my $deaf = abuse_fork(sub {
    my $ctl = shift;
    my $c = ws_connect('/ws', rcvbuf => 4096);
    $c->recv_json;
    $ctl->ready;

    my $chunk = ws_ping('x' x 125) x 1000;
    my ($written, $why) = (0, 'time');
    my $start = time;
    my $end = $start + 20;

    while (time < $end) {
        my $left = $c->try_send_raw($chunk, 2);
        $written += length($chunk) - length($left);
        if (length $left) {
            $why = $! ? "write: $!" : 'the server stopped reading';
            last;
        }
    }

    # then it reads: pongs, at most a close 1008, the end
    my ($pongs, $last) = (0, 'nothing');
    while (my $f = $c->next_frame(5)) {
        $pongs++, next if $f->{name} eq 'pong';
        $last = $f->{name} eq 'close'
                ? 'close ' . unpack('n', $f->{payload}) : $f->{name};
        last;
    }

    return { written => $written, secs => time - $start, why => $why,
             pongs => $pongs, last => $last };
}, name => 'ping flood (never reading)');

$_->wait_ready for $reader, $deaf;
my $stats = $probe->during([$reader, $deaf], min => 1, max => 40);
$probe->ok_responsive($stats, what => 'the ping floods');

my $r = $reader->result;
is($r->{pongs}, 20000, 'the reading flooder got 20000 pongs');
is($r->{bad}, 0, 'each with its ping\'s payload, in order');

my $d = $deaf->result;
# (while closing, the server reads and drops what comes, for
# ws_relay_close_timeout, then resets)
ok($d->{why} ne 'time' && $d->{secs} < 5,
   sprintf('the deaf flooder was cut off after %.1f s (%s; %.0f MB of'
           . ' pings sent)', $d->{secs}, $d->{why}, $d->{written} / 1e6))
    or diag explain $d;
ok($d->{last} eq 'close 1008' || $d->{last} eq 'eof',
   "it read $d->{pongs} pongs, then $d->{last}");
is(log_count(qr/send queue over 65536 bytes, closing with 1008/, $mark), 1,
   'one "send queue over 65536 bytes, closing with 1008" line');

$probe->close;
--- error_log
send queue over 65536 bytes, closing with 1008
--- no_error_log
[error]
[crit]
[alert]
[emerg]



=== TEST 5: register churn at 10k/s: the server answers all, stays responsive, and the registry and Redis are exact afterwards
--- ws_session
my $probe = probe_open();
my @probes = $probe->users;
my ($kids, $conns, $rate, $secs, $batch) = (2, 2, 10000, 3, 50);

my @kids = map { my $k = $_; abuse_fork(sub {
    my $ctl = shift;
    my @c = map { my $c = ws_connect('/ws'); $c->recv_json; $c } 1 .. $conns;
    $ctl->ready;

    my ($n, $ok, $bad) = (0, 0, 0);
    my $start = time;
    my $per = $rate / $kids;

    while (time - $start < $secs) {
        for my $i (0 .. $#c) {
            $c[$i]->send_raw(join '', map {
                ws_text(qq|{"type":"register","userId":"churn-$k-$i-|
                        . ($n + $_) . '"}') } 1 .. $batch);
        }
        for my $c (@c) {
            for (1 .. $batch) {
                my $f = $c->next_frame(5) or die "no register reply\n";
                $f->{payload} =~ /"status":"success"/ ? $ok++ : $bad++;
            }
        }
        $n += $batch;

        # paced: $per registers a second from this process
        my $ahead = $n * @c / $per - (time - $start);
        sleep $ahead if $ahead > 0;
    }
    my $took = time - $start;

    # the last ids: the ones they keep
    my @final;
    for my $i (0 .. $#c) {
        my $r = $c[$i]->call({type => 'register', userId => "final-$k-$i"});
        die "final register failed\n" unless $r->{status} eq 'success';
        push @final, "final-$k-$i";
    }

    $ctl->report({ registers => $n * @c, ok => $ok, bad => $bad,
                   secs => $took, final => \@final, last => $n });
    $ctl->hold;

    # gone without a close frame: the kernel closes the sockets
    return;
}, name => "register churn $k") } 1 .. $kids;

$_->wait_ready for @kids;
my $stats = $probe->during(\@kids, min => 1, max => 30);
$probe->ok_responsive($stats, what => 'the register churn');

my @res = map { $_->result } @kids;
my ($regs, $ok, $bad, $took) = (0, 0, 0, 0);
for (@res) {
    $regs += $_->{registers};
    $ok += $_->{ok};
    $bad += $_->{bad};
    $took = $_->{secs} if $_->{secs} > $took;
}
my @final = sort map { @{ $_->{final} } } @res;

is($ok, $regs, "$regs registers, each answered with success");
# paced at $rate a second; a busy machine may slow the clients down
ok($regs / $took >= 0.5 * $rate,
   sprintf('%.0f registers/s (%d in %.2f s), paced at %d/s', $regs / $took,
           $regs, $took, $rate));

my $want = @probes + @final;
my $api;
wait_for(sub { $api = api_connections();
               my $users = 0;
               $users += $_->{users} for @{ $api->{workers} };
               $api->{activeConnections} == $want && $users == $want }, 5);
is($api->{activeConnections}, $want, "/api/connections: $want connections");
my $users = 0;
$users += $_->{users} for @{ $api->{workers} };
is($users, $want, "/api/connections: $want users");

redis_users_ok([@probes, @final], 'Redis holds the probes and final ids only');

my ($p) = $probe->clients;
json_is($p->call({type => 'notification', targetUserId => $final[0]}),
        {type => 'notification_result', targetUserId => $final[0],
         delivered => TRUE, connections => 1, timestamp => NOW},
        "$final[0] has one connection");
my $stale = "churn-1-0-$res[0]{last}";
json_is($p->call({type => 'notification', targetUserId => $stale}),
        {type => 'notification_result', targetUserId => $stale,
         delivered => FALSE, connections => 0, timestamp => NOW},
        "$stale, its id before, has none");

# the churners drop their connections
$_->finish for @kids;
wait_for(sub { api_connections()->{activeConnections} == @probes }, 5);
is(api_connections()->{activeConnections}, scalar @probes,
   'their connections are gone');
redis_users_ok(\@probes, 'Redis holds the probes only');

$probe->close;
wait_for(sub { api_connections()->{activeConnections} == 0 }, 5);
is(api_connections()->{activeConnections}, 0, 'no connection left');
redis_users_ok([], 'Redis holds no user');
--- no_error_log
[error]
[crit]
[alert]
[emerg]



=== TEST 6: ws_relay_limit_rate 20r/s burst=40: error replies, then close 1008; well-behaved clients unaffected
--- config
    location = /ws {
        ws_relay;
        ws_relay_limit_rate 20r/s burst=40;
    }
--- ws_session
my $mark = log_mark();
my $flood = join '', map { ws_json({type => 'ping'}) } 1 .. 200;

# 200 messages at once: 1 + burst answered, max(burst, 10) refused,
# then the next refusal closes
my $c = ws_open('/ws');
$c->send_raw($flood);
my @seq;
while (my $m = $c->next_message(3)) {
    if ($m->{type} ne 'text') {
        push @seq, $m->{type} eq 'close' ? "close $m->{code}" : $m->{type};
        last;
    }
    my $j = JSON::PP::decode_json($m->{data});
    push @seq, $j->{type} eq 'error' ? "error: $j->{message}" : $j->{type};
}
my @runs;
for (@seq) {
    if (@runs && $runs[-1][0] eq $_) { $runs[-1][1]++ } else { push @runs, [$_, 1] }
}
is(join(', ', map { "$_->[1] x $_->[0]" } @runs),
   '41 x pong, 40 x error: Rate limit exceeded, message dropped,'
   . ' 1 x close 1008', '200 pings at once');
$c->expect_eof('then the server closes');

# within the burst, and again once it has leaked away
my $b = ws_open('/ws');
for my $round (1, 2) {
    $b->send_raw(join '', map { ws_json({type => 'ping'}) } 1 .. 40);
    my @t = map { $b->recv_json->{type} } 1 .. 40;
    is(join(' ', grep { $_ ne 'pong' } @t), '', "burst $round of 40: 40 pongs");
    sleep 2.1 if $round == 1;
}

# flooders over and over, while well-behaved clients (at most 8 messages
# a second each) ping and chat
my $probe = probe_open();
my $abuse = abuse_fork(sub {
    my $ctl = shift;
    $ctl->ready;

    my %n;
    my $end = time + 3;
    while (time < $end) {
        my @c = map { my $c = ws_connect('/ws'); $c->recv_json; $c } 1 .. 5;
        $_->send_raw($flood) for @c;
        for my $c (@c) {
            while (my $m = $c->next_message(3)) {
                if ($m->{type} eq 'text') {
                    $n{ $m->{data} =~ /"type":"(\w+)"/ ? $1 : 'other' }++;
                    next;
                }
                $n{ $m->{type} eq 'close' ? "close $m->{code}" : 'eof' }++;
                last;
            }
        }
        $n{conns} += @c;
    }
    return \%n;
}, name => 'rate limit floods');

$abuse->wait_ready;
my $stats = $probe->during($abuse, min => 1, interval => 0.25);
$probe->ok_responsive($stats, what => 'the floods over the rate limit',
                      rounds => 3);

my $n = $abuse->result;
my $k = $n->{conns};
ok($k >= 10, "$k flooders");
is($n->{'close 1008'}, $k, 'each closed with 1008');
is($n->{pong}, 41 * $k, 'each got 41 pongs');
is($n->{error}, 40 * $k, 'and 40 error replies');

is(log_count(qr/closing with 1008: message rate limit exceeded/, $mark),
   $k + 1, 'a "message rate limit exceeded" line per flooder');
is(log_count(qr/message over the rate limit refused/, $mark), 40 * ($k + 1),
   'a "refused" line per error reply');
$probe->close;
--- error_log
client error, closing with 1008: message rate limit exceeded
--- no_error_log
[error]
[crit]
[alert]
[emerg]
