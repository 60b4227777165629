# GET /api/metrics: Prometheus text exposition format 0.0.4, read by a
# small checker (prom_parse in WsRelay::Api), one series per worker, and
# figures that match the traffic the test made, frame by frame.

use Test::Nginx::Socket 'no_plan';
use WsRelay::Test;
use WsRelay::Redis;
use WsRelay::Api;

my %Families = (
    ws_relay_connections                 => 'gauge',
    ws_relay_users                       => 'gauge',
    ws_relay_connections_accepted_total  => 'counter',
    ws_relay_connections_rejected_total  => 'counter',
    ws_relay_messages_received_total     => 'counter',
    ws_relay_messages_sent_total         => 'counter',
    ws_relay_bytes_received_total        => 'counter',
    ws_relay_bytes_sent_total            => 'counter',
    ws_relay_deliveries_total            => 'counter',
    ws_relay_delivery_timeouts_total     => 'counter',
    ws_relay_redis_up                    => 'gauge',
    ws_relay_redis_reconnects_total      => 'counter',
    ws_relay_redis_errors_total          => 'counter',
    ws_relay_redis_rtt_seconds           => 'gauge',
    ws_relay_closes_total                => 'counter',
);

# GET /api/metrics, checked: (families, text); one assertion for the
# format, one for the families and their types, one for the labels
sub scrape {
    my ($desc, @pids) = @_;

    my $text = metrics_get(desc => $desc);
    my ($fam, $problems) = prom_parse($text);

    ok(!@$problems, "$desc: valid exposition format")
        or diag(join("\n", @$problems) . "\n$text");

    my @wrong = grep { ($fam->{$_}{type} // 'missing') ne $Families{$_} }
                sort keys %Families;
    ok(!@wrong, "$desc: every family, with its type")
        or diag(join ', ', map { "$_: " . ($fam->{$_}{type} // 'missing') }
                           @wrong);

    # one series per worker (closes: per worker and code), live workers only
    my @bad;
    for my $name (sort keys %$fam) {
        my %seen;
        for my $s (@{ $fam->{$name}{samples} }) {
            my $w = $s->{labels}{worker} // '';
            my @keys = sort keys %{ $s->{labels} };
            my $want = $name eq 'ws_relay_closes_total' ? 'code worker'
                                                        : 'worker';
            push @bad, "$name: labels @keys" if "@keys" ne $want;
            push @bad, "$name: worker \"$w\" is not live"
                unless grep { $_ eq $w } @pids;
            $seen{$w}++;
        }
        next if $name eq 'ws_relay_closes_total';
        push @bad, "$name: series for workers " . join(' ', sort keys %seen)
            if join(' ', sort keys %seen) ne join(' ', sort @pids);
    }
    ok(!@bad, "$desc: one series per live worker, labelled worker=\"pid\"")
        or diag(join "\n", @bad);

    return ($fam, $text);
}

# {pid => value} of a family; closes: {pid => {code => value}}
sub values_of {
    my ($fam, $name) = @_;

    my %v;
    for my $s (@{ $fam->{$name}{samples} || [] }) {
        if (exists $s->{labels}{code}) {
            $v{ $s->{labels}{worker} }{ $s->{labels}{code} } = $s->{value} + 0;

        } else {
            $v{ $s->{labels}{worker} } = $s->{value} + 0;
        }
    }
    return \%v;
}


# --- a tally of the traffic, kept frame by frame on the client side ----------

my %T;

sub tally { $T{ $_[0] } //= { map { $_ => 0 } qw(accepted conns users in_msgs
                                                out_msgs in_bytes out_bytes
                                                deliveries) } }

sub server_frame_size {
    my $len = shift;

    return $len + ($len < 126 ? 2 : $len < 65536 ? 4 : 10);
}

# reads one frame from the server and counts it for the client's worker
sub take {
    my ($c) = @_;

    my $f = $c->next_frame(3) or die "no frame from the server\n";
    die "connection ended\n" if $f->{name} eq 'eof';

    my $t = tally($c->{pid});
    $t->{out_bytes} += server_frame_size(length $f->{payload});
    $t->{out_msgs}++ if $f->{opcode} < 8;
    return $f;
}

sub take_json {
    my $f = take(@_);

    return JSON::PP->new->utf8->decode($f->{payload});
}

sub open_client {
    my $c = ws_connect('/ws');
    my $f = $c->next_frame(3) or die "no welcome\n";
    my $m = JSON::PP->new->utf8->decode($f->{payload});

    $c->{pid} = $m->{processId};
    my $t = tally($c->{pid});
    $t->{accepted}++;
    $t->{conns}++;
    $t->{out_msgs}++;
    $t->{out_bytes} += server_frame_size(length $f->{payload});
    return $c;
}

sub send_msg {
    my ($c, $msg) = @_;

    my $frame = ws_json($msg);
    $c->send_raw($frame);

    my $t = tally($c->{pid});
    $t->{in_msgs}++;
    $t->{in_bytes} += length $frame;
}

# ends a connection: close frame with $code (undef: an empty one), or
# 'drop' (TCP close, no frame); returns the code the server counts
sub end_client {
    my ($c, $code) = @_;

    my $t = tally($c->{pid});
    $t->{conns}--;

    if (defined $code && $code eq 'drop') {
        CORE::close($c->{sock});
        return 1006;
    }

    my $frame = defined $code ? ws_close($code) : ws_close();
    $c->send_raw($frame);
    $t->{in_bytes} += length $frame;

    my $f = take($c);
    die "want the server's close, got $f->{name}\n" if $f->{name} ne 'close';
    $c->expect_eof('the server ends the connection after its close');

    return $code // 1005;
}

redis_start();
api_defaults();

master_on();
workers(2);
# test 2 keeps every client it opens, however unevenly they spread
worker_connections(1024);
log_level('info');
run_tests();

__DATA__

=== TEST 1: the exposition: valid, typed, one series per worker; text/plain; version=0.0.4
--- ws_session
my @pids = nginx_workers_up();
api_wait('/api/health', sub { $_[0]{status} eq 'ok' });

my ($fam, $text) = main::scrape('fresh nginx', @pids);
like($text, qr/\A# HELP /, 'starts with a HELP line');

my %zero = map { $_ => 0 } @pids;
for my $name (grep { /_total$/ && !/closes/ } sort keys %$fam) {
    json_is(main::values_of($fam, $name), \%zero, "$name: 0 on every worker");
}
json_is(main::values_of($fam, 'ws_relay_closes_total'), {},
        'closes: no series yet');
json_is(main::values_of($fam, 'ws_relay_connections'), \%zero,
        'no connections');
json_is(main::values_of($fam, 'ws_relay_redis_up'),
        { map { $_ => 1 } @pids }, 'Redis up on every worker');

my $rtt = main::values_of($fam, 'ws_relay_redis_rtt_seconds');
ok(!grep({ $_ < 0 || $_ >= 1 } values %$rtt),
   'Redis round trip: seconds, under 1 s on this machine')
    or diag(explain $rtt);
like($text, qr/^ws_relay_redis_rtt_seconds\{worker="\d+"\} \d+\.\d{6}$/m,
     'round trip in seconds with microseconds');
--- no_error_log
[error]
[crit]



=== TEST 2: the figures follow the traffic, frame by frame, per worker
--- ws_session
my @pids = nginx_workers_up();
my ($wa, $wb) = @pids;
my %by;

# at least 3 clients on each worker, all counted
for (1 .. 300) {
    last unless grep { @{ $by{$_} || [] } < 3 } @pids;
    my $c = main::open_client();
    push @{ $by{ $c->{pid} } }, $c;
}
my @A = @{ $by{$wa} };
my @B = @{ $by{$wb} };
ok(@A >= 3 && @B >= 3, 'clients on both workers');

# pings: 2 from each of a's clients, 1 from each of b's
for my $c (@A, @A, @B) {
    main::send_msg($c, {type => 'ping'});
    main::take_json($c);
}

main::send_msg($A[0], {type => 'register', userId => 'ma'});
main::take_json($A[0]);
main::send_msg($B[0], {type => 'register', userId => 'mb'});
main::take_json($B[0]);
main::tally($_)->{users}++ for $wa, $wb;
api_wait('/api/redis-info', sub { $_[0]{userProcesses}{ma}
                                  && $_[0]{userProcesses}{mb} });

# a chat across workers, a notification within one
main::send_msg($A[1], {type => 'chat', targetUserId => 'mb', text => 'x'});
is(main::take_json($A[1])->{delivered}, JSON::PP::true, 'chat delivered');
is(main::take_json($B[0])->{text}, 'x', 'chat received');
main::tally($wa)->{deliveries}++;

main::send_msg($B[1], {type => 'notification', targetUserId => 'mb'});
is(main::take_json($B[1])->{connections}, 1, 'notification delivered');
is(main::take_json($B[0])->{type}, 'notification', 'notification received');
main::tally($wb)->{deliveries}++;

# API deliveries count on the worker that answers: checked as a sum
for my $user (qw(ma mb ma)) {
    api_post('/api/send-to-user', {userId => $user, message => 'api'});
}
main::take_json($A[0]) for 1 .. 2;
main::take_json($B[0]);
my $api_deliveries = 3;

# closes: 1000, an application code, an empty close frame, a dropped TCP
my %closes;
$closes{$wa}{ main::end_client($A[2], 1000) }++;
$closes{$wb}{ main::end_client($B[2], 4001) }++;
$closes{$wa}{ main::end_client($A[1], undef) }++;
$closes{$wb}{ main::end_client($B[1], 'drop') }++;
my %code_label = (1000 => '1000', 4001 => 'other', 1005 => '1005',
                  1006 => '1006');
%closes = map { my $p = $_;
                ($p => { map { ($code_label{$_} => $closes{$p}{$_}) }
                         keys %{ $closes{$p} } }) } keys %closes;

my $open = sub { $_[0] && $_[0]{activeConnections}
                 == main::tally($wa)->{conns} + main::tally($wb)->{conns} };
api_wait('/api/connections', $open);
sleep 0.2;

my ($fam) = main::scrape('after the traffic', @pids);
my $v = sub { main::values_of($fam, $_[0]) };
my $each = sub { my $k = shift;
                 +{ map { $_ => main::tally($_)->{$k} } @pids } };

json_is($v->('ws_relay_connections'), $each->('conns'), 'connections');
json_is($v->('ws_relay_users'), $each->('users'), 'users');
json_is($v->('ws_relay_connections_accepted_total'), $each->('accepted'),
        'accepted');
json_is($v->('ws_relay_connections_rejected_total'), { map { $_ => 0 } @pids },
        'rejected');
json_is($v->('ws_relay_messages_received_total'), $each->('in_msgs'),
        'messages received');
json_is($v->('ws_relay_messages_sent_total'), $each->('out_msgs'),
        'messages sent');
json_is($v->('ws_relay_bytes_received_total'), $each->('in_bytes'),
        'bytes received');
json_is($v->('ws_relay_bytes_sent_total'), $each->('out_bytes'),
        'bytes sent');
json_is($v->('ws_relay_closes_total'), \%closes, 'closes by code');
json_is($v->('ws_relay_delivery_timeouts_total'), { map { $_ => 0 } @pids },
        'no delivery timed out');

my $d = $v->('ws_relay_deliveries_total');
my $api_part = { map { $_ => $d->{$_} - main::tally($_)->{deliveries} } @pids };
ok(!grep({ $_ < 0 } values %$api_part), 'deliveries: chat and notification'
   . ' on the sender\'s worker') or diag(explain $d);
my $sum = 0;
$sum += $_ for values %$api_part;
is($sum, $api_deliveries, 'deliveries: plus the 3 API sends');
--- no_error_log
[error]
[crit]



=== TEST 3: connections refused at capacity: rejected and closed with 1013
--- http_config
    ws_relay_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT prefix=$TEST_NGINX_RELAY_PREFIX;
    ws_relay_max_connections 1;
--- ws_session
my @pids = nginx_workers_up();
my (%held, $refused);

for (1 .. 100) {
    last if keys %held == 2 && $refused;
    my $c = ws_connect('/ws');
    my $m = $c->recv_json;

    if ($m->{type} eq 'welcome') {
        $held{ $m->{processId} } = $c;
        next;
    }

    json_is($m, {type => 'error',
                 message => 'Server is at capacity, please try again later'},
            'refused with the capacity message') unless $refused;
    $c->expect_close(1013, 'then close 1013') unless $refused;
    $c->close;
    $refused++;
}
is(scalar keys %held, 2, 'one connection held on each worker');

my $fam;
for (1 .. 20) {
    ($fam) = main::scrape('at capacity', @pids);
    my $c = main::values_of($fam, 'ws_relay_closes_total');
    my $n = 0;
    $n += $_->{1013} // 0 for values %$c;
    last if $n == $refused;
    sleep 0.1;
}
my $sum = sub { my $t = 0;
                $t += $_ for values %{ main::values_of($fam, $_[0]) };
                $t };

is($sum->('ws_relay_connections_rejected_total'), $refused,
   "rejected: $refused in all");
my $c = main::values_of($fam, 'ws_relay_closes_total');
my $n = 0;
$n += $_->{1013} // 0 for values %$c;
is($n, $refused, 'closes{code="1013"}: as many');
json_is(main::values_of($fam, 'ws_relay_connections'),
        { map { $_ => 1 } @pids }, 'one open connection per worker');
--- error_log
ws relay: at capacity (1 connections)
--- no_error_log
[error]
[crit]



=== TEST 4: without Redis: the same families, Redis down to 0
--- http_config
--- ws_session
my @pids = nginx_workers_up();
my ($fam) = main::scrape('no Redis', @pids);
json_is(main::values_of($fam, 'ws_relay_redis_up'), { map { $_ => 0 } @pids },
        'redis_up 0');
json_is(main::values_of($fam, 'ws_relay_redis_rtt_seconds'),
        { map { $_ => 0 } @pids }, 'no round trip measured');
--- no_error_log
[error]
[crit]



=== TEST 5: the checker refuses what Prometheus would refuse
--- ws_session
my $good = <<'_EOT_';
# HELP a_total Things, with \\ and \n escaped.
# TYPE a_total counter
a_total{worker="1",code="1000"} 3
a_total{worker="2",code="other"} 0 1700000000000
# HELP b A gauge.
# TYPE b gauge
b{path="a \"quoted\" \\ value"} -1.5e3
b{path="x"} +Inf
b{path="y"} NaN
_EOT_

my ($fam, $p) = prom_parse($good);
is_deeply($p, [], 'a valid exposition passes');
is($fam->{b}{samples}[0]{labels}{path}, 'a "quoted" \\ value',
   'label values are unescaped');
is($fam->{a_total}{type}, 'counter', 'types are read');

my @bad = (
    ["a_total 1\n# HELP a_total x\n# TYPE a_total counter\n",
     'before its TYPE'],
    ["# HELP a x\n# TYPE a counter\na 1\n", 'does not end in _total'],
    ["# HELP a_total x\n# TYPE a_total gauge\na_total 1\n", 'ends in _total'],
    ["# HELP a_total x\n# TYPE a_total counter\na_total -1\n", 'negative'],
    ["# HELP b x\n# TYPE b gauge\nb{w=1} 1\n", 'bad label syntax'],
    ["# HELP b x\n# TYPE b gauge\nb{w=\"1} 1\n", 'bad label syntax'],
    ["# HELP b x\n# TYPE b gauge\nb{w=\"1\"}\n", 'not a sample'],
    ["# HELP b x\n# HELP c x\n# TYPE b gauge\nb 1\n", 'already closed'],
    ["# HELP b bad \\escape\n# TYPE b gauge\nb 1\n", 'bad escape'],
    ["# HELP b x\n# TYPE b gauge\nb{w=\"1\" v=\"2\"} 1\n", 'not separated'],
    ["# HELP b x\n# TYPE b gauge\nb{1w=\"1\"} 1\n", 'bad label syntax'],
    ["# HELP b x\n# TYPE b gauge\nb{__w=\"1\"} 1\n", 'reserved'],
    ["# HELP b x\n# TYPE b gauge\nb{w=\"1\",w=\"2\"} 1\n", 'twice'],
    ["# HELP b x\n# TYPE b gauge\nb{w=\"1\"} one\n", 'bad value'],
    ["# HELP b x\n# TYPE b gauge\nb 1\nb 2\n", 'series b{} twice'],
    ["# HELP 1b x\n# TYPE 1b gauge\n1b 1\n", 'bad metric name'],
    ["# HELP b x\n# TYPE b gauge\n# TYPE b gauge\nb 1\n", 'second TYPE'],
    ["# HELP b x\n# HELP b y\n# TYPE b gauge\nb 1\n", 'second HELP'],
    ["# HELP b x\n# TYPE b gauges\nb 1\n", 'unknown type'],
    ["# TYPE b gauge\nb 1\n", 'before its HELP'],
    ["# HELP b x\n# TYPE b gauge\nb{w=\"1\"} 1\n"
     . "# HELP c x\n# TYPE c gauge\nc 1\nb{w=\"2\"} 2\n", 'already closed'],
    ["# HELP b x\n# TYPE b gauge\nb 1", 'no newline at the end'],
    ['', 'empty'],
);

for my $case (@bad) {
    my ($text, $why) = @$case;
    my (undef, $p) = prom_parse($text);
    ok(scalar(grep { index($_, $why) >= 0 } @$p),
       "refused: $why") or diag(explain $p);
}
--- no_error_log
[error]
[crit]
