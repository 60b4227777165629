# Graceful shutdown: on "nginx -s quit" (SIGQUIT) and on reload (SIGHUP)
# every connection gets close 1001 and the old worker exits within
# seconds, well before worker_shutdown_timeout.

use Test::Nginx::Socket 'no_plan';
use WsRelay::Test;

# Waits up to $secs for a process to be gone; returns how long it took.
sub gone_within {
    my ($pid, $secs) = @_;
    my $start = Time::HiRes::time();
    while (Time::HiRes::time() - $start < $secs) {
        waitpid $pid, 1;
        return Time::HiRes::time() - $start unless kill 0, $pid;
        Time::HiRes::sleep(0.05);
    }
    return undef;
}

ws_defaults(main_config => "worker_shutdown_timeout 60s;\n");

master_on();
workers(1);
log_level('info');
run_tests();

__DATA__

=== TEST 1: quit: every client gets 1001, nginx exits within seconds
--- ws_session
my @clients = map { ws_open('/ws') } 1 .. 3;
$clients[0]->call({type => 'register', userId => 'u1'});
my ($worker) = nginx_worker_pids();
my $master = nginx_pid();

kill 'QUIT', $master;

$_->expect_close(1001, 'quit: going away') for @clients;
my $took = main::gone_within($worker, 5);
ok(defined $took, 'the worker exits within 5 s (shutdown timeout is 60 s)');
ok(defined main::gone_within($master, 5), 'then the master');
--- no_error_log
[error]
[crit]
[alert]



=== TEST 2: reload: old connections get 1001, new ones reach the new worker
--- ws_session
my $old = ws_open('/ws');
$old->call({type => 'register', userId => 'u1'});
my $old_pid = $old->{pid};

kill 'HUP', nginx_pid();

$old->expect_close(1001, 'reload: going away');
ok(defined main::gone_within($old_pid, 5), 'the old worker exits within 5 s');

my $new = ws_open('/ws');
isnt($new->{pid}, $old_pid, 'a new client is served by the new worker');
json_is($new->call({type => 'notification', targetUserId => 'u1'}),
        {type => 'notification_result', targetUserId => 'u1',
         delivered => FALSE, connections => 0, timestamp => NOW},
        'the old worker\'s registrations are gone with it');
--- no_error_log
[error]
[crit]
[alert]



=== TEST 3: a client that never answers the 1001 holds the worker only for ws_relay_close_timeout
--- http_config
    ws_relay_close_timeout 1s;
--- ws_session
my $c = ws_open('/ws', auto_pong => 0);
my ($worker) = nginx_worker_pids();

kill 'QUIT', nginx_pid();

my $m = $c->next_message(3);
is($m && $m->{code}, 1001, 'close 1001');
my $took = main::gone_within($worker, 5);
ok(defined $took && $took < 3, 'the worker exits after about 1 s, unanswered'
                                . ' (' . ($took // 'never') . ')');
--- no_error_log
[error]
[crit]
[alert]



=== TEST 4: quit with a message half received and a client that is silent
--- ws_session
my $a = ws_open('/ws');
$a->send_text('{"type":"ch', fin => 0);
my $b = ws_open('/ws', auto_pong => 0);
my ($worker) = nginx_worker_pids();

kill 'QUIT', nginx_pid();

$a->expect_close(1001, 'mid-message: going away');
$b->expect_close(1001, 'silent: going away');
ok(defined main::gone_within($worker, 5), 'the worker exits within 5 s');
--- no_error_log
[error]
[crit]
[alert]
