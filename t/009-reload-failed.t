# A reload that fails: the master keeps its old configuration, and a
# worker it starts later (after one died) must still find the module's
# shared memory zone, serve WebSocket clients and count them in the API.
#
# Each block rewrites the running nginx's nginx.conf into one that parses
# (the module's postconfiguration runs, the zone is added to the new
# cycle) but that ngx_init_cycle() then gives up on, sends SIGHUP, waits
# for the [emerg] line, puts the original nginx.conf back, then SIGKILLs a
# worker and checks the one the master starts in its place: a welcome
# with its pid, register, a chat from a second client, /api/health
# (status ok, activeConnections = the clients really open, one entry per
# live worker) and /api/metrics (a ws_relay_connections line per worker).
#
# Why it fails without the fix: the zone used to be kept in a file static
# of ngx_ws_relay_shm.c, set by ngx_shared_memory_add() while the new
# configuration was parsed. When ngx_init_cycle() fails after that point,
# the master keeps its old cycle and destroys the new cycle's pool, but
# the static still points into that pool. Workers forked before the
# reload keep their own, valid, copy; a worker forked after it reads the
# freed ngx_shm_zone_t in ngx_ws_relay_shm_init_worker() and in every API
# handler (ngx_ws_relay_shm()):
#   - TEST 1: the reload fails opening a log file in a directory that does
#     not exist, before nginx sets up shared memory: the freed zone says
#     data == NULL, the new worker takes no statistics slot, and its first
#     API request dereferences NULL: "worker process N exited on signal
#     11", no reply to GET /api/health or /api/metrics;
#   - TEST 2: the reload fails binding 127.0.0.1:<a port the test holds>
#     (after the shared memory setup; nginx retries bind() for about 2 s):
#     what the worker reads is whatever the allocator left in the freed
#     memory; with the plain build here its API requests crashed it
#     (signal 11) on every run too;
#   - TEST 3, 2 workers: the survivor, forked before the reload, answers
#     the API but the new worker is missing from /api/health and
#     /api/metrics, and crashes (signal 11) when it answers itself.
# Under make test-asan every block fails with "AddressSanitizer:
# heap-use-after-free" in ngx_ws_relay_shm() called from
# ngx_ws_relay_shm_init_worker(), the memory freed by ngx_destroy_pool()
# from ngx_init_cycle()'s failure path. The fix keeps the zone in the
# module's main conf, reached through the worker's own cycle.

use Test::Nginx::Socket 'no_plan';
use WsRelay::Test;
use WsRelay::Api;

sub read_file {
    my $file = shift;

    open my $in, '<', $file or die "$file: $!\n";
    my $text = do { local $/; <$in> };
    close $in;
    return $text;
}

sub write_file {
    my ($file, $text) = @_;

    open my $out, '>', $file or die "$file: $!\n";
    print $out $text;
    close $out or die "$file: $!\n";
}

# Reloads nginx (SIGHUP) on the harness's nginx.conf as $edit rewrites
# it, a config that parses (the module's postconfiguration runs) but that
# ngx_init_cycle() then gives up on; waits for the error-log line
# matching $failed, and puts the original nginx.conf back.
sub failed_reload {
    my ($edit, $failed, $desc) = @_;

    my $conf_file = $Test::Nginx::Util::ConfFile;
    my $log_file = "$Test::Nginx::Util::ServRoot/logs/error.log";
    my $conf = read_file($conf_file);
    my $bad = $edit->($conf);
    die "failed_reload: the edit changed nothing\n" if $bad eq $conf;

    my $master = nginx_pid();
    my @workers = nginx_worker_pids();
    my $pos = -s $log_file;

    write_file($conf_file, $bad);
    kill 'HUP', $master;

    my $seen = wait_for(sub {
        my $log = read_file($log_file);
        substr($log, $pos) =~ $failed;
    }, 10);

    write_file($conf_file, $conf);

    ok($seen, "$desc: the reload fails, the error log says why");
    is(nginx_pid(), $master, "$desc: the same master");
    is("@{[ nginx_worker_pids() ]}", "@workers",
       "$desc: the old workers go on, none started");
}

# The edit for a reload that fails before nginx sets up shared memory:
# an error log in a directory that does not exist.
sub bad_log_file {
    my $conf = shift;

    my $dir = "$Test::Nginx::Util::ServRoot/no-such-dir";
    return "$conf\nerror_log $dir/error.log;\n";
}

# SIGKILL to a worker; returns the pid of the one the master starts in
# its place.
sub replace_worker {
    my $old = shift;

    my $master = nginx_pid();
    my %before = map { $_ => 1 } nginx_worker_pids();
    kill 'KILL', $old;

    my $new;
    ok(wait_for(sub {
           my @p = grep { $_ != $master } nginx_worker_pids();
           my @fresh = grep { !$before{$_} } @p;
           $new = $fresh[0];
           @p == keys %before && @fresh == 1 && !grep { $_ == $old } @p;
       }, 5), "the master starts a new worker after the SIGKILL");

    return $new;
}

# The worker the master started after the failed reload serves clients
# and counts them: welcome, register, a chat from a second client,
# /api/health and /api/metrics (asked as many times as there are workers,
# twice: any of them may answer). %others: the clients and users that
# the other workers hold, by pid.
sub check_worker {
    my ($new, %others) = @_;

    die "no new worker\n" unless $new;

    # two clients on the new worker (those that land elsewhere are closed)
    my ($bob, $anon) = @{ (ws_open_per_worker('/ws', 2, pids => [$new]))[0] };
    is($bob->{pid}, $new, "welcome: processId is the new worker's pid");

    json_is($bob->call({type => 'register', userId => 'bob'}),
            {type => 'register', status => 'success', userId => 'bob',
             timestamp => NOW}, 'bob registers on the new worker');
    json_is($anon->call({type => 'chat', targetUserId => 'bob',
                         text => 'after the failed reload'}),
            {type => 'chat_delivered', targetUserId => 'bob',
             delivered => TRUE, timestamp => NOW},
            'a second client chats to bob: delivered');
    json_is($bob->recv_json,
            {type => 'chat', text => 'after the failed reload',
             sender => $anon->{id}, timestamp => NOW}, 'bob gets it');

    my %want = (%others, $new => [2, 1]);
    my $asks = 2 * keys %want;

    for my $left (2, 1) {
        my $total = 0;
        $total += $_->[0] for values %want;

        for (1 .. $asks) {
            my $h = api_get('/api/health');
            $h->{workers} = [ sort { $a->{pid} <=> $b->{pid} }
                              @{ $h->{workers} || [] } ] if $h;
            json_is($h,
                    {status => 'ok', uptime => NUMBER, timestamp => STRING,
                     activeConnections => $total + 0, maxConnections => NUMBER,
                     workers => [ map { {pid => $_ + 0,
                                         connections => $want{$_}[0] + 0,
                                         users => $want{$_}[1] + 0,
                                         redis => 'disabled'} }
                                  sort { $a <=> $b } keys %want ],
                     redis => {state => 'disabled', lastError => ''}},
                    "/api/health: ok, activeConnections $total, $left on"
                    . ' the new worker');

            my $text = metrics_get(desc => 'GET /api/metrics');
            my ($fam, $problems) = prom_parse($text);
            ok(!@$problems, '/api/metrics: valid exposition format')
                or diag(join("\n", @$problems) . "\n$text");
            is(join(' ', map { "$_->{labels}{worker}:$_->{value}" }
                         sort { $a->{labels}{worker} <=> $b->{labels}{worker} }
                         @{ $fam->{ws_relay_connections}{samples} || [] }),
               join(' ', map { "$_:$want{$_}[0]" } sort { $a <=> $b }
                         keys %want),
               "/api/metrics: ws_relay_connections, $left on the new worker")
                or diag($text);
        }

        last if $left == 1;

        $anon->close;
        $want{$new}[0] = 1;
        api_wait('/api/health', sub { $_[0]{activeConnections} == $total - 1 });
    }

    $bob->close;
}

ws_defaults(config => "    location = /ws {\n        ws_relay;\n    }\n\n"
                      . "    location /api/ {\n" . api_routes_config()
                      . "    }\n");

# one worker, or two for the blocks that say so in their names
add_block_preprocessor(sub { workers($_[0]->name =~ /\b2 workers\b/ ? 2 : 1) });

master_on();
log_level('info');
run_tests();

__DATA__

=== TEST 1: a reload fails on a log file it cannot open; the worker started after it works
--- ws_session
my ($old) = nginx_worker_pids();
my $alice = ws_open('/ws');
$alice->call({type => 'register', userId => 'alice'});

main::failed_reload(
    \&main::bad_log_file,
    qr{\[emerg\] .*no-such-dir/error\.log" failed}, 'log file');

my $c = ws_open('/ws', welcome => {processId => $old + 0});
is((api_get('/api/health') || {})->{activeConnections}, 2,
   'the old worker still serves and counts its clients');
$c->close;

my $new = main::replace_worker($old);
is(($alice->next_message(3) || {})->{type}, 'eof',
   'the killed worker\'s client loses its connection');
main::check_worker($new);
--- error_log eval
['[emerg]',
 qr{\[emerg\] \d+#\d+: open\(\) "[^"]*/no-such-dir/error\.log" failed \(2: No such file or directory\)$},
 '[alert]',
 qr/\[alert\] \d+#\d+: worker process \d+ exited on signal 9$/]
--- no_error_log eval
['[error]', '[crit]', qr/exited on signal (?!9$)/, 'core dumped',
 qr/exited with (?:fatal )?code [1-9]/]



=== TEST 2: a reload fails on a listen socket it cannot bind; the worker started after it works
--- ws_session
# the address the new config asks for, held by the test
my $holder = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                   Proto => 'tcp', Listen => 1)
    or die "listen: $!\n";
my $port = $holder->sockport;

my ($old) = nginx_worker_pids();
my $alice = ws_open('/ws');
$alice->call({type => 'register', userId => 'alice'});

main::failed_reload(
    sub { (my $conf = shift)
              =~ s/^(\s*listen\s+\d+;)$/$1\n        listen 127.0.0.1:$port;/m;
          $conf },
    qr/\[emerg\] .*still could not bind\(\)/, 'listen');
close $holder;

my $new = main::replace_worker($old);
is(($alice->next_message(3) || {})->{type}, 'eof',
   'the killed worker\'s client loses its connection');
main::check_worker($new);
--- error_log eval
['[emerg]',
 qr/\[emerg\] \d+#\d+: bind\(\) to 127\.0\.0\.1:\d+ failed \(98: Address already in use\)$/,
 qr/\[emerg\] \d+#\d+: still could not bind\(\)$/,
 '[alert]',
 qr/\[alert\] \d+#\d+: worker process \d+ exited on signal 9$/]
--- no_error_log eval
['[error]', '[crit]', qr/exited on signal (?!9$)/, 'core dumped',
 qr/exited with (?:fatal )?code [1-9]/]



=== TEST 3: 2 workers: after a failed reload one is killed; its replacement and the survivor work
--- ws_session
my ($wa, $wb) = nginx_workers_up();
my ($A, $B) = ws_open_per_worker('/ws', 1);
$A->[0]->call({type => 'register', userId => 'alice'});
$B->[0]->call({type => 'register', userId => 'carol'});

main::failed_reload(
    \&main::bad_log_file,
    qr{\[emerg\] .*no-such-dir/error\.log" failed}, 'log file');

my $new = main::replace_worker($wa);
is(($A->[0]->next_message(3) || {})->{type}, 'eof',
   'the killed worker\'s client loses its connection');
main::check_worker($new, $wb => [1, 1]);

json_is($B->[0]->call({type => 'ping'}), {type => 'pong', timestamp => NOW},
        'the survivor\'s client is still served');
--- error_log eval
['[emerg]',
 qr{\[emerg\] \d+#\d+: open\(\) "[^"]*/no-such-dir/error\.log" failed \(2: No such file or directory\)$},
 '[alert]',
 qr/\[alert\] \d+#\d+: worker process \d+ exited on signal 9$/]
--- no_error_log eval
['[error]', '[crit]', qr/exited on signal (?!9$)/, 'core dumped',
 qr/exited with (?:fatal )?code [1-9]/]
