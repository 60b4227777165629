# ws_relay_drain: on reload or quit, an old worker closes each WebSocket
# with 1001 at a random moment within the drain window (capped below
# worker_shutdown_timeout) instead of all at once, so that clients do not
# all reconnect in the same instant. Without it, every client gets its
# 1001 at once. The bounds are in seconds, for a loaded machine: a
# uniform spread of 40 closes over 2 s puts 80% of them about 1.6 s
# apart; all at once, they come within milliseconds.

use Test::Nginx::Socket 'no_plan';
use WsRelay::Test;
use IO::Select ();

# Reads every client until it closes, answering the close; returns, per
# client, [seconds after $t0 its close frame was read, close code, text
# messages before it] (code undef: the connection ended without a close
# frame). Gives up after $secs.
sub close_times {
    my ($clients, $t0, $secs) = @_;

    my %open = map { $_ => $clients->[$_] } 0 .. $#$clients;
    my @times;
    my $deadline = Time::HiRes::time() + $secs;

    while (%open && Time::HiRes::time() < $deadline) {
        my $sel = IO::Select->new(map { $_->{sock} } values %open);
        $sel->can_read(0.05);

        for my $i (sort { $a <=> $b } keys %open) {
            my $c = $open{$i};

            # what arrived, without waiting on a quiet connection
            while (my $m = $c->next_message(0.001)) {
                if ($m->{type} eq 'text') {
                    $c->{texts}++;
                    next;
                }

                $times[$i] = [Time::HiRes::time() - $t0,
                              $m->{type} eq 'close' ? $m->{code} : undef,
                              $c->{texts} // 0];
                $c->send_close($m->{code}) if $m->{type} eq 'close'
                                              && !$c->{eof};
                delete $open{$i};
                last;
            }
        }
    }

    return @times;
}

# the time between the 10% and the 90% quantiles of the close times
sub spread {
    my @t = sort { $a <=> $b } map { $_->[0] } grep { defined } @_;

    return 0 unless @t;
    return $t[int(0.9 * $#t)] - $t[int(0.1 * $#t)];
}

# Waits up to $secs for a process to be gone.
sub gone_within {
    my ($pid, $secs) = @_;

    return wait_for(sub { waitpid $pid, 1; !kill 0, $pid }, $secs);
}

ws_defaults(main_config => "worker_shutdown_timeout 60s;\n");

master_on();
workers(1);
worker_connections(1024);
log_level('info');
run_tests();

__DATA__

=== TEST 1: reload with ws_relay_drain 2s: every client gets 1001 within the window, spread over it; a new worker serves meanwhile
--- http_config
    ws_relay_drain 2s;
--- ws_session
my @c = map { ws_open('/ws') } 1 .. 40;
my ($old) = nginx_worker_pids();

my $t0 = time;
kill 'HUP', nginx_pid();

# a JSON ping from each: an old connection works until its close
$_->send_json({type => 'ping'}) for @c;

my $new;
wait_for(sub { $new = ws_open('/ws'); $new->{pid} != $old }, 5);
isnt($new->{pid}, $old, 'a new client is served by the new worker');
json_is($new->call({type => 'ping'}), {type => 'pong', timestamp => NOW},
        'while the old one drains');

my @t = main::close_times(\@c, $t0, 15);
is(scalar(grep { $_ && defined $_->[1] && $_->[1] == 1001 } @t), 40,
   'each of the 40 clients gets close 1001');
my $pongs = grep { $_ && $_->[2] } @t;
ok($pongs >= 20, "at least half got their pong before their close: $pongs");

my ($last) = sort { $b <=> $a } map { $_->[0] } grep { defined } @t;
ok(defined $last && $last < 2 + 3,
   sprintf('the last within the window and a margin: %.2f s', $last // -1));
ok($last >= 1, sprintf('not all at the start: the last at %.2f s',
                       $last // -1));
my $spread = main::spread(@t);
ok($spread >= 0.5, sprintf('spread over the window: 80%% of them %.2f s'
                           . ' apart', $spread));
ok(main::gone_within($old, 5), 'the old worker exits');
--- no_error_log
[error]
[crit]
[alert]



=== TEST 2: quit with ws_relay_drain 2s: the closes are spread over the window, then nginx exits
--- http_config
    ws_relay_drain 2s;
--- ws_session
my @c = map { ws_open('/ws') } 1 .. 40;
my ($worker) = nginx_worker_pids();
my $master = nginx_pid();

my $t0 = time;
kill 'QUIT', $master;

my @t = main::close_times(\@c, $t0, 15);
is(scalar(grep { $_ && defined $_->[1] && $_->[1] == 1001 } @t), 40,
   'each of the 40 clients gets close 1001');
my ($last) = sort { $b <=> $a } map { $_->[0] } grep { defined } @t;
ok(defined $last && $last < 2 + 3,
   sprintf('the last within the window and a margin: %.2f s', $last // -1));
my $spread = main::spread(@t);
ok($spread >= 0.5, sprintf('spread over the window: 80%% of them %.2f s'
                           . ' apart', $spread));
ok(main::gone_within($worker, 5), 'the worker exits');
ok(main::gone_within($master, 5), 'then the master');
--- no_error_log
[error]
[crit]
[alert]



=== TEST 3: reload without ws_relay_drain: every client gets 1001 at once
--- ws_session
my @c = map { ws_open('/ws') } 1 .. 40;
my ($old) = nginx_worker_pids();

my $t0 = time;
kill 'HUP', nginx_pid();

my @t = main::close_times(\@c, $t0, 15);
is(scalar(grep { $_ && defined $_->[1] && $_->[1] == 1001 } @t), 40,
   'each of the 40 clients gets close 1001');
my @s = sort { $a <=> $b } map { $_->[0] } grep { defined } @t;
ok(@s && $s[-1] - $s[0] < 1, sprintf('all within 1 s of each other: %.3f s',
                                     @s ? $s[-1] - $s[0] : -1));
ok(main::gone_within($old, 5), 'the old worker exits');
--- no_error_log
[error]
[crit]
[alert]



=== TEST 4: ws_relay_drain 0 is no drain
--- http_config
    ws_relay_drain 0;
--- ws_session
my @c = map { ws_open('/ws') } 1 .. 40;

my $t0 = time;
kill 'HUP', nginx_pid();

my @t = main::close_times(\@c, $t0, 15);
is(scalar(grep { $_ && defined $_->[1] && $_->[1] == 1001 } @t), 40,
   'each of the 40 clients gets close 1001');
my @s = sort { $a <=> $b } map { $_->[0] } grep { defined } @t;
ok(@s && $s[-1] - $s[0] < 1, sprintf('all within 1 s of each other: %.3f s',
                                     @s ? $s[-1] - $s[0] : -1));
--- no_error_log
[error]
[crit]
[alert]



=== TEST 5: a drain longer than worker_shutdown_timeout is cut to fit: every client gets its 1001, spread, before nginx gives up on it
--- main_config
worker_shutdown_timeout 6s;
--- http_config
    ws_relay_drain 60s;
    ws_relay_close_timeout 1s;
--- ws_session
# uncut, about 4 of the 40 closes would come before the 6 s and the rest
# all at once when the shutdown timeout fires
my @c = map { ws_open('/ws') } 1 .. 40;
my ($old) = nginx_worker_pids();

my $t0 = time;
kill 'HUP', nginx_pid();

my @t = main::close_times(\@c, $t0, 20);
is(scalar(grep { $_ && defined $_->[1] && $_->[1] == 1001 } @t), 40,
   'each of the 40 clients gets close 1001');
my ($last) = sort { $b <=> $a } map { $_->[0] } grep { defined } @t;
ok(defined $last && $last < 6 + 2, sprintf('the last within the shutdown'
                                           . ' timeout and a margin: %.2f s',
                                           $last // -1));
my $spread = main::spread(@t);
ok($spread >= 0.5, sprintf('spread before the timeout: 80%% of them %.2f s'
                           . ' apart', $spread));
ok(main::gone_within($old, 6 + 5), 'the old worker exits');
--- no_error_log
[error]
[crit]
[alert]



=== TEST 6: ws_relay_drain: a time, in http only
--- ws_session
my $loc = "    location = /ws {\n        ws_relay;\n    }\n";

for my $value ('2s', '500ms', '0') {
    my ($status, $out) = nginx_config_test(
        http_config => "    ws_relay_drain $value;\n", config => $loc);
    is($status, 0, "ws_relay_drain $value is accepted") or diag($out);
}

my ($status, $out) = nginx_config_test(
    http_config => "    ws_relay_drain abc;\n", config => $loc);
isnt($status, 0, 'ws_relay_drain abc: nginx -t fails');
like($out, qr/\[emerg\] .*ws_relay_drain/, 'an [emerg] says why');

for my $where ('server', 'location') {
    my $line = "ws_relay_drain 2s;\n";
    my ($status, $out) = nginx_config_test(
        config => $where eq 'server'
                  ? "    $line$loc"
                  : "    location = /ws {\n        ws_relay;\n"
                    . "        $line    }\n");
    isnt($status, 0, "in $where: nginx -t fails");
    like($out, qr/\[emerg\] "ws_relay_drain" directive is not allowed here/,
         "in $where: not allowed here");
}
--- no_error_log
[error]
[crit]
[alert]
