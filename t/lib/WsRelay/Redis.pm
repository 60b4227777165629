package WsRelay::Redis;

# A Redis for the test suites: redis_start() reuses whatever answers on
# $ENV{TEST_NGINX_REDIS_PORT} (default 6399), or starts Debian's
# redis-server there with its own temporary directory and no persistence,
# and stops it at exit, even when a test dies. For fault tests, the Redis
# started here can be killed, stopped, restarted (also with other
# redis-server arguments), paused and resumed.
#
#   use WsRelay::Redis;
#   redis_start();                    # before run_tests()
#   --- http_config
#       ws_relay_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
#
# A block's "--- ws_session" sees these functions too.

use strict;
use warnings;

use Exporter 'import';
use File::Temp ();
use IO::Select ();
use IO::Socket::INET ();
use POSIX qw(WNOHANG);
use Test::More ();
use Time::HiRes qw(sleep time);

our @EXPORT = qw(
    redis_start redis_stop redis_kill redis_restart redis_pause redis_resume
    redis_port redis_pid redis_managed redis_cmd redis_numsub redis_clients
    redis_nodes_up redis_up_ok redis_routes_ok
);

my $Port = $ENV{TEST_NGINX_REDIS_PORT} || 6399;
$ENV{TEST_NGINX_REDIS_PORT} = $Port;

my ($Pid, $Dir, $Starter);

# the extra redis-server arguments of the Redis running now
my @Args;


sub redis_port { $Port }
sub redis_pid { $Pid }

# true when the Redis was started here (so it can be killed and restarted)
sub redis_managed { defined $Starter }


# One command, one reply: a string, a number, an array ref, undef for a
# nil; dies on an error reply or when Redis does not answer in 2 s.
sub redis_cmd {
    my @args = @_;

    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                     PeerPort => $Port, Proto => 'tcp',
                                     Timeout => 2)
        or die "redis: cannot connect to 127.0.0.1:$Port: $!\n";

    my $req = '*' . @args . "\r\n";
    $req .= '$' . length($_) . "\r\n$_\r\n" for @args;
    print $sock $req;

    my $buf = '';
    my $reply = read_reply($sock, \$buf);
    close $sock;
    return $reply;
}

sub read_more {
    my ($sock, $buf) = @_;

    IO::Select->new($sock)->can_read(2)
        or die "redis: no reply within 2 s\n";
    sysread($sock, $$buf, 65536, length $$buf)
        or die "redis: connection closed\n";
}

sub read_line {
    my ($sock, $buf) = @_;

    read_more($sock, $buf) while $$buf !~ /\r\n/;
    $$buf =~ s/\A(.*?)\r\n//s;
    return $1;
}

sub read_reply {
    my ($sock, $buf) = @_;

    my $line = read_line($sock, $buf);
    my ($type, $rest) = (substr($line, 0, 1), substr($line, 1));

    return $rest if $type eq '+';
    return $rest + 0 if $type eq ':';
    die "redis: $rest\n" if $type eq '-';

    if ($type eq '$') {
        return undef if $rest < 0;
        read_more($sock, $buf) while length $$buf < $rest + 2;
        my $s = substr($$buf, 0, $rest);
        substr($$buf, 0, $rest + 2, '');
        return $s;
    }

    if ($type eq '*') {
        return undef if $rest < 0;
        return [ map { read_reply($sock, $buf) } 1 .. $rest ];
    }

    die "redis: bad reply \"$line\"\n";
}


# PUBSUB NUMSUB: how many clients subscribe to each channel, in order.
sub redis_numsub {
    my @channels = @_;

    my $reply = redis_cmd('PUBSUB', 'NUMSUB', @channels);
    my %n = @$reply;
    return map { $n{$_} } @channels;
}

# True when each of these nginx workers (node ids: a connectionId less its
# last "-<n>") has both its links to Redis up: its lease in the set
# "ws_relay:nodes" (written once its command link is ready) and a
# subscriber on its node channel "ws_relay:n:<node>". The module's default
# prefix "ws_relay:".
sub redis_nodes_up {
    my @nodes = @_;

    for my $node (@nodes) {
        return 0 unless defined redis_cmd('ZSCORE', 'ws_relay:nodes', $node);
    }

    return !grep { $_ != 1 } redis_numsub(map { "ws_relay:n:$_" } @nodes);
}

# Assertions for ws_session code, named after the block:
#
# redis_up_ok(@clients): within 5 s, the workers holding these clients
# have both links to Redis up (a worker accepts clients before they are).
sub redis_up_ok {
    my @clients = @_;

    my %nodes = map { $_->node => 1 } @clients;
    my @nodes = sort keys %nodes;

    return Test::More::ok(wait_until(sub { redis_nodes_up(@nodes) }, 5),
                          block_name() . ' - ' . @nodes
                          . ' worker(s) on Redis');
}

# redis_routes_ok(bob => 2, carol => 0): within 3 s, Redis routes each
# user to that many workers (subscribers of "ws_relay:u:{<user>}").
sub redis_routes_ok {
    my %want = @_;

    my @users = sort keys %want;
    my $want = join ' ', @want{@users};
    my $got;

    wait_until(sub {
        $got = join ' ', redis_numsub(map { "ws_relay:u:{$_}" } @users);
        $got eq $want;
    }, 3);

    return Test::More::is($got, $want, block_name() . " - routes of @users"
                                       . ' to that many workers');
}

sub block_name {
    no warnings 'once';
    return $WsRelay::Test::BlockName // '';
}

# CLIENT LIST, without the connection asking: one hash per client
# ({addr => ..., sub => ..., cmd => ..., ...}).
sub redis_clients {
    my $list = redis_cmd('CLIENT', 'LIST');

    my @clients = map { +{ map { /^([^=]+)=(.*)$/ ? ($1, $2) : () }
                           split / / } } split /\r?\n/, $list;
    return grep { ($_->{cmd} // '') !~ /^client\b/ } @clients;
}


sub answers {
    my $pong = eval { redis_cmd('PING') };
    return defined $pong && $pong eq 'PONG';
}

sub wait_until {
    my ($cond, $secs) = @_;

    my $deadline = time + $secs;
    while (time < $deadline) {
        return 1 if $cond->();
        sleep 0.05;
    }
    return $cond->();
}

sub running {
    return 0 unless $Pid;
    return 0 if waitpid($Pid, WNOHANG) == $Pid;
    return kill 0, $Pid;
}


# redis_start(@args): @args are more redis-server arguments, e.g.
# ('--rename-command', 'GETSET', 'PUBLISH'); a Redis started here with
# other arguments is restarted. A Redis this test did not start is used
# as it is (see redis_managed).
sub redis_start {
    my @args = @_;

    if (running()) {
        return $Port if "@args" eq "@Args";
        redis_stop();

    } elsif (!$Starter && answers()) {
        return $Port;
    }

    $Dir ||= File::Temp::tempdir('ws-relay-redis-XXXXXX', TMPDIR => 1,
                                 CLEANUP => 1);

    my @cmd = ('redis-server', '--port', $Port, '--bind', '127.0.0.1',
               '--save', '', '--appendonly', 'no', '--dir', $Dir,
               '--logfile', "$Dir/redis.log", '--daemonize', 'no',
               '--protected-mode', 'no', @args);

    my $pid = fork;
    die "fork: $!\n" unless defined $pid;

    if ($pid == 0) {
        # its own process group: a Ctrl-C aimed at the tests is ours
        setpgrp(0, 0);
        exec @cmd or POSIX::_exit(127);
    }

    $Pid = $pid;
    $Starter = $$;
    @Args = @args;

    wait_until(\&answers, 5)
        or die "redis-server did not answer on port $Port (see"
               . " $Dir/redis.log)\n";

    return $Port;
}


sub managed_only {
    my $what = shift;

    die "redis: cannot $what a Redis this test did not start\n"
        unless $Starter && $Starter == $$;
}

# SIGKILL: the sudden death of Redis
sub redis_kill {
    managed_only('kill');
    return unless running();

    kill 'KILL', $Pid;
    waitpid $Pid, 0;
    undef $Pid;
}

sub redis_stop {
    managed_only('stop');
    return unless running();

    kill 'CONT', $Pid;
    kill 'TERM', $Pid;
    wait_until(sub { !running() }, 5) or kill 'KILL', $Pid;
    waitpid $Pid, 0;
    undef $Pid;
}

# redis_restart(@args): a fresh Redis, empty, with these arguments
sub redis_restart {
    my @args = @_;

    managed_only('restart');
    redis_stop();
    return redis_start(@args);
}

# SIGSTOP: Redis hangs with its connections open
sub redis_pause {
    managed_only('pause');
    kill 'STOP', $Pid if running();
}

sub redis_resume {
    managed_only('resume');
    kill 'CONT', $Pid if running();
}


# interrupted runs stop the Redis too, through END
my %SigNum = (HUP => 1, INT => 2, TERM => 15);
for my $sig (keys %SigNum) {
    $SIG{$sig} = sub { exit 128 + $SigNum{$sig} } unless $SIG{$sig};
}

END {
    # waitpid (in running) sets $?, the exit status of the test
    local $?;

    if ($Starter && $Starter == $$ && running()) {
        kill 'CONT', $Pid;
        kill 'TERM', $Pid;
        wait_until(sub { !running() }, 5) or kill 'KILL', $Pid;
        waitpid $Pid, 0;
    }
}

1;
