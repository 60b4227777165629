# One client must not stall a worker: a bomber on worker A sends small
# permessage-deflate messages that each inflate to almost 1 MiB of JSON
# (a chat whose text is an array of half a million numbers, arrays nested
# without end, a chat whose array never closes), 256 of them in flight at
# any time so that its socket is never empty, while a victim on the same
# worker pings and chats with a peer on worker B through Redis.  No speed
# is asserted (bench/ scenario 10 measures the round trips; a reply is
# awaited 10 s at most): the victim's rounds must all complete while the
# bombs keep coming, every chat of theirs must be delivered, the Redis
# links must stay up, and the bomber gets what it deserves.

use Test::Nginx::Socket;
use WsRelay::Test;
use WsRelay::Redis;
use WsRelay::Deflate;
use WsRelay::Abuse;

# the test is about a worker's time: under valgrind each of these
# messages takes the worker longer than a delivery may wait for its acks
if ($ENV{TEST_NGINX_USE_VALGRIND}) {
    plan(skip_all => 'nginx runs under valgrind: 1 MiB messages take it'
                     . ' longer than ack_timeout');
}

plan('no_plan');

redis_start();
abuse_defaults();

master_on();
workers(2);
log_level('info');
no_shuffle();
run_tests();

__DATA__

=== TEST 1: a bomber of 1 MiB compressed messages stalls neither its worker's other clients nor the worker's Redis links
--- http_config
    ws_relay_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT prefix=$TEST_NGINX_ABUSE_PREFIX;
--- config
    location = /ws {
        ws_relay;
        ws_relay_deflate on;
    }
    location = /api/health {
        ws_relay_api health;
    }
    location = /api/metrics {
        ws_relay_api metrics;
    }
--- ws_session
# every one of them answered within this (a liveness bound, not a speed
# goal: a worker that serves the bomber alone answers nothing until the
# bomber stops)
my $deadline = 10;
my ($rounds, $window, $size) = (20, 256, 1024 * 1024 - 1024);

# ws_relay_redis_reconnects_total, summed over the workers
my $reconnects = sub {
    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                     PeerPort => server_port_now(),
                                     Proto => 'tcp', Timeout => 3)
        or die "connect: $!\n";
    print $sock "GET /api/metrics HTTP/1.0\r\nHost: localhost\r\n\r\n";
    my $resp = join '', <$sock>;
    my $n = 0;
    $n += $1
        while $resp =~ /^ws_relay_redis_reconnects_total\{.*\} (\d+)\r?$/mg;
    return $n;
};

my @pids = nginx_workers_up();
my ($a_side, $b_side) = ws_open_per_worker('/ws', 1);
my ($victim, $peer) = ($a_side->[0], $b_side->[0]);
my $worker_a = $victim->{pid};

for ([$victim, 'victim'], [$peer, 'peer']) {
    my ($c, $user) = @$_;
    json_is($c->call({type => 'register', userId => $user}),
            {type => 'register', status => 'success', userId => $user,
             timestamp => NOW}, "$user registered");
}

# both ways routed through Redis before the bombing
for ([$victim, $peer, 'peer'], [$peer, $victim, 'victim']) {
    my ($from, $to, $user) = @$_;
    ok(wait_for(sub {
        my $r = $from->call({type => 'chat', targetUserId => $user,
                             text => 'warm-up'});
        $r->{delivered} ? $to->recv_json : 0 }, 3), "$user is routed");
}

my $reconnects0 = $reconnects->();

my $bomber = abuse_fork(sub {
    my $ctl = shift;

    # on worker A, like the victim (no Test::More in a child: no
    # ws_open_deflate)
    my $c;
    for (1 .. 200) {
        $c = ws_connect_deflate('/ws', offer => 'permessage-deflate');
        die "bomber: permessage-deflate not negotiated\n"
            unless $c->{pmd}{permessage_deflate};
        $c->{pid} = $c->recv_json->{processId} // 0;
        last if $c->{pid} == $worker_a;
        $c->close;
        undef $c;
    }
    die "no connection reached worker $worker_a\n" unless $c;

    my $r = $c->call({type => 'register', userId => 'bomber'});
    die "bomber: register failed\n" unless $r->{status} eq 'success';

    # {"type":"chat","text":[0,0,...,0]}, [[[[..., and
    # {"type":"chat","text":[0,0,0,... never closed: each $size bytes
    my $head = '{"type":"chat","text":';
    my $zeros = '[' . join(',', (0) x (($size - length($head) - 2) / 2)) . ']';
    $zeros =~ s/\]\z/ ]/ while length($head . $zeros) + 1 < $size;
    my %text = (chat => "$head$zeros}", deep => '[' x $size,
                unclosed => $head . substr($zeros, 0, -1) . ',0');
    for (sort keys %text) {
        die "the $_ bomb is " . length($text{$_}) . " bytes\n"
            unless length $text{$_} == $size;
    }
    my %z = map { $_ => pmd_compress($text{$_}) } keys %text;
    my @kinds = qw(chat deep unclosed);

    my (@expect, %got, @bad);
    my ($out, $sent, $released, $end) = ('', 0, 0, 'none');
    my $echo_head = $head . $zeros;

    my $take = sub {
        my $t = shift;
        while (my $m = $c->next_message($t)) {
            $t = 0;
            if ($m->{type} ne 'text') {
                $end = $m->{type} eq 'close' ? "close $m->{code}"
                                             : "eof ($m->{why})";
                return 0;
            }
            my $kind = shift @expect // 'nothing';
            my $d = $m->{data};
            if ($kind eq 'chat'
                && substr($d, 0, length $echo_head) eq $echo_head
                && substr($d, length $echo_head)
                   =~ /\A,"sender":"bomber","timestamp":\d+\}\z/)
            {
                $got{echo}++;

            } elsif ($kind ne 'chat'
                     && $d eq '{"type":"error","message":'
                               . '"Invalid message format"}')
            {
                $got{refused}++;

            } else {
                push @bad, "for $kind: " . substr($d, 0, 80) if @bad < 5;
            }
        }
        return 1;
    };

    my $pump = sub {
        while (@expect < $window && !$released) {
            my $k = $kinds[$sent++ % @kinds];
            push @expect, $k;
            $out .= ws_frame(opcode => 'text', rsv => 4, payload => $z{$k});
        }
        my $n = syswrite($c->{sock}, $out);
        substr($out, 0, $n, '') if $n;
    };

    # the first window, then the victim may go
    $pump->();
    $ctl->ready(pid => $c->{pid});

    # until released (25 s at most), then the answers to what is in
    # flight (10 s at most)
    my $stop = time + 25;
    while (time < $stop) {
        if (!$released && $ctl->released) {
            $released = 1;
            $stop = time + 10;
        }
        last if $released && !@expect && $out eq '';
        $pump->();
        $take->(0.005) or last;
    }

    # a close, and its answer (behind any answers still in flight)
    my $left = @expect;
    if ($end eq 'none') {
        $end = 'no close in 5 s';
        eval { $c->send_raw($out . ws_close(1000)); 1 }
            or $end = "the close not sent: $@";
        my $until = time + 5;
        while (my $m = $c->next_message(WsRelay::Test::max(0,
                                                           $until - time)))
        {
            next if $m->{type} eq 'text';
            $end = $m->{type} eq 'close' ? "close $m->{code}" : $m->{type};
            last;
        }
    }

    return { sent => $sent, echoes => $got{echo} // 0,
             refused => $got{refused} // 0, bad => \@bad,
             unanswered => $left, released => $released, end => $end };
}, name => 'bomber', max => 50);

is($bomber->wait_ready(30)->{pid}, $worker_a, 'the bomber is on worker A');

# the victim's rounds, each while the bomber keeps sending
my ($done, $pings, $pongs, $error) = (0, 0, 0, '');
my %chats = (to_peer => [0, 0, 0], to_victim => [0, 0, 0]);

my $expect = sub {
    my ($c, $who, $what, $ok) = @_;
    my $m = eval { $c->recv_json($deadline) };
    die "$who: no $what in $deadline s" . ($@ ? ": $@" : "\n") unless $m;
    die "$who: want $what, got " . JSON::PP::encode_json($m) . "\n"
        unless $ok->($m);
    return $m;
};

for my $i (1 .. $rounds) {
    my $ok = eval {
        $victim->send_json({type => 'ping'});
        $pings++;
        $expect->($victim, 'victim', 'pong', sub { $_[0]{type} eq 'pong' });
        $pongs++;

        for ([$victim, $peer, 'victim', 'peer', 'to_peer'],
             [$peer, $victim, 'peer', 'victim', 'to_victim'])
        {
            my ($from, $to, $me, $user, $k) = @$_;
            my $text = "round $i from $me";
            $from->send_json({type => 'chat', targetUserId => $user,
                              text => $text});
            my $ack = $expect->($from, $me, 'chat_delivered',
                                sub { $_[0]{type} eq 'chat_delivered' });
            $chats{$k}[$ack->{delivered} ? 0 : 1]++;
            $expect->($to, $user, "\"$text\"",
                      sub { $_[0]{type} eq 'chat' && $_[0]{text} eq $text
                            && $_[0]{sender} eq $me });
            $chats{$k}[2]++;
        }

        $done++;
        sleep 0.02;
        1;
    };
    if (!$ok) {
        $error = $@;
        last;
    }
    # the bomber gave up (it says why in its result)
    last if $bomber->done;
}

$bomber->release;
my $r = $bomber->result(45);

# (a) the victim on the bomber's worker
is($error, '', 'no round failed');
is($done, $rounds, "the victim's $rounds rounds completed while the bomber"
   . ' kept sending');
is($pongs, $pings, "every ping answered ($pongs of $pings)");
is("@{ $chats{to_peer} }", "$done 0 $done",
   'victim -> peer (worker B): delivered true, false, received');
is("@{ $chats{to_victim} }", "$done 0 $done",
   'peer -> victim (worker A): delivered true, false, received');

# (c) the bomber
ok($r->{released}, 'the bomber kept sending until the rounds were over');
ok($r->{sent} > $window, "the bomber sent $r->{sent} bombs, $window in"
   . ' flight at any time');
is($r->{unanswered}, 0, 'every bomb answered, in order')
    or diag explain $r;
is("@{ $r->{bad} }", '', 'each with what it deserves');
ok($r->{echoes} > 0 && $r->{echoes} == int(($r->{sent} + 2) / 3),
   "$r->{echoes} valid chats came back whole");
ok($r->{refused} > 0 && $r->{refused} == $r->{sent} - $r->{echoes},
   "$r->{refused} invalid ones refused: \"Invalid message format\"");
is($r->{end}, 'close 1000', 'the bomber stayed connected until it closed');

# (b) Redis, (d) the workers
is($reconnects->(), $reconnects0, 'no worker reconnected to Redis');
my ($status, $health) = http_get_json('/api/health');
is($health->{status}, 'ok', '/api/health: ok');
is(join(' ', nginx_worker_pids()), join(' ', @pids),
   'the same workers as before');

$victim->close;
$peer->close;
--- no_error_log eval
[
    qr/ws relay: redis \w+ link: .*timed out/,
    qr/subscriber timed out/,
    '[error]',
    '[crit]',
    '[alert]',
    '[emerg]',
    qr/exited on signal/,
]
