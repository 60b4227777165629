package WsRelay::Sentinel;

# A Redis Sentinel set for the test suites: a master, a replica of it and
# three sentinels watching them as "mymaster" (quorum 2, down after 1 s,
# failover timeout 5 s), all on 127.0.0.1 on the ports just above
# $ENV{TEST_NGINX_REDIS_PORT} (default 6399):
#
#   port + 1   the first master          port + 4   the third sentinel
#   port + 2   its replica               port + 5   a spare Redis, started
#   port + 3   the first sentinel                   on demand (spare_start)
#
# Each process has its files (configuration, log) in a temporary
# directory, not in the test server root, which Test::Nginx empties
# between blocks: a sentinel rewrites its configuration at each failover.
# Everything started here is stopped at exit, even when a test dies or is
# interrupted.
#
#   use WsRelay::Sentinel;
#   add_block_preprocessor(sub { sentinel_fresh() });
#   --- http_config
#       ws_relay_redis sentinel=$TEST_NGINX_SENTINELS master=mymaster;
#
# Session code ("--- ws_session") sees these functions too.

use strict;
use warnings;

use Exporter ();
use File::Temp ();
use IO::Select ();
use IO::Socket::INET ();
use POSIX qw(WNOHANG);
use Test::More ();
use Time::HiRes qw(sleep time);

use WsRelay::Test ();
use WsRelay::Redis ();

our @EXPORT = qw(
    sentinel_fresh sentinel_stop_all sentinel_ports first_master_port
    first_replica_port spare_port sentinel_name sentinel_cmd
    sentinel_master_port wait_master_change server_cmd server_start
    server_kill server_stop server_pause server_resume server_running
    spare_start server_role server_clients nginx_clients
    commandstats wait_synced redis_monitor
);

my $Base = ($ENV{TEST_NGINX_REDIS_PORT} || 6399) + 1;

my $Name = 'mymaster';

# what the configurations name: "127.0.0.1:<s1>,127.0.0.1:<s2>,..."
$ENV{TEST_NGINX_SENTINELS} = join ',', map { "127.0.0.1:$_" }
                                       $Base + 2 .. $Base + 4;
$ENV{TEST_NGINX_SENTINEL_MASTER} = $Name;

my $Dir;
my $Starter = $$;

# port => pid, and port => the arguments it was started with
my (%Pid, %Args);

# the passwords of this set: the Redis servers', the sentinels' (or '')
my ($Password, $SentinelPassword) = ('', '');


sub first_master_port { $Base }
sub first_replica_port { $Base + 1 }
sub sentinel_ports { ($Base + 2 .. $Base + 4) }
sub spare_port { $Base + 5 }
sub sentinel_name { $Name }

sub dir {
    $Dir ||= File::Temp::tempdir('ws-relay-sentinel-XXXXXX', TMPDIR => 1,
                                 CLEANUP => 1);
    return $Dir;
}


# --- talking to a server ---------------------------------------------------

# server_cmd($port, @args): one command, one reply, as redis_cmd gives
# it (dies on an error reply or after $timeout s, default 2).
sub server_cmd {
    my ($port, @args) = @_;

    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                     PeerPort => $port, Proto => 'tcp',
                                     Timeout => 2)
        or die "redis: cannot connect to 127.0.0.1:$port: $!\n";

    my $pass = (grep { $_ == $port } sentinel_ports()) ? $SentinelPassword
                                                       : $Password;
    my @cmds = (($pass ne '' ? (['AUTH', $pass]) : ()), \@args);

    for my $cmd (@cmds) {
        my $req = '*' . @$cmd . "\r\n";
        $req .= '$' . length($_) . "\r\n$_\r\n" for @$cmd;
        print $sock $req;
    }

    my $buf = '';
    my $reply;
    $reply = WsRelay::Redis::read_reply($sock, \$buf) for @cmds;
    close $sock;
    return $reply;
}

# sentinel_cmd($i, @args): to the sentinel $i (0, 1, 2)
sub sentinel_cmd {
    my ($i, @args) = @_;

    return server_cmd((sentinel_ports())[$i], @args);
}

# The port of the master the sentinels name now: the first one that
# answers, or the port at least two of them name (majority => 1); only
# the sentinels numbered in from => [...] (default 0, 1, 2) are asked.
# undef when none answers.
sub sentinel_master_port {
    my (%o) = @_;

    my %votes;

    for my $i (@{ $o{from} || [0 .. 2] }) {
        my $r = eval { sentinel_cmd($i, 'SENTINEL', 'get-master-addr-by-name',
                                    $Name) };
        next unless ref $r eq 'ARRAY' && @$r == 2;
        return $r->[1] unless $o{majority};
        $votes{ $r->[1] }++;
    }

    my ($port) = grep { $votes{$_} >= 2 } keys %votes;
    return $port;
}

# wait_master_change($old, $secs, tick => sub {...}, from => [...]): polls
# the sentinels until one of them names another master than port $old,
# calling tick between polls (traffic); returns (the new port, the time
# it was first seen), or () after $secs.
sub wait_master_change {
    my ($old, $secs, %o) = @_;

    my $deadline = time + $secs;

    while (time < $deadline) {
        my $port = sentinel_master_port(from => $o{from});
        return ($port, time) if defined $port && $port != $old;
        $o{tick} ? $o{tick}->() : sleep 0.05;
    }

    return ();
}

# ROLE's first word ("master", "slave"), undef when it does not answer
sub server_role {
    my $port = shift;

    my $r = eval { server_cmd($port, 'ROLE') };
    return ref $r eq 'ARRAY' ? $r->[0] : undef;
}

# CLIENT LIST of a server: one hash per client, the connection asking
# left out
sub server_clients {
    my $port = shift;

    my $list = server_cmd($port, 'CLIENT', 'LIST');

    my @clients = map { +{ map { /^([^=]+)=(.*)$/ ? ($1, $2) : () }
                           split / / } } split /\r?\n/, $list;
    return grep { ($_->{cmd} // '') !~ /^client\b/ } @clients;
}

# The clients of a server that are nginx's: not a sentinel (they name
# their links "sentinel-..."), not a replica or its master's link, not a
# MONITOR, not the test's own.
sub nginx_clients {
    my $port = shift;

    return grep { ($_->{name} // '') !~ /^sentinel-/
                  && ($_->{flags} // '') !~ /[SMO]/
                  && ($_->{cmd} // '') ne 'monitor' } server_clients($port);
}

# INFO commandstats: {command => {calls, rejected_calls, failed_calls}}
sub commandstats {
    my $port = shift;

    my %stats;
    for my $line (split /\r?\n/, server_cmd($port, 'INFO', 'commandstats')) {
        next unless $line =~ /^cmdstat_([^:]+):(.*)$/;
        my $cmd = $1;
        $stats{$cmd} = { map { split /=/, $_, 2 } split /,/, $2 };
    }
    return \%stats;
}

# until the replica on $replica has every byte of the master on $master
sub wait_synced {
    my ($master, $replica, $secs) = @_;

    my $offset = sub {
        my ($port, $field) = @_;
        my $info = eval { server_cmd($port, 'INFO', 'replication') } // '';
        return $info =~ /^$field:(\d+)/m ? $1 : -1;
    };

    return WsRelay::Test::wait_for(sub {
        my $want = $offset->($master, 'master_repl_offset');
        my $info = eval { server_cmd($replica, 'INFO', 'replication') } // '';
        $want >= 0 && $info =~ /^master_link_status:up/m
        && $offset->($replica, 'slave_repl_offset') == $want;
    }, $secs // 5);
}


# --- MONITOR -----------------------------------------------------------------

# my $m = redis_monitor($port); ... $m->lines: every command the server
# ran since, as [time, client address, command, args...]; $m->stop.
sub redis_monitor {
    my $port = shift;

    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                     PeerPort => $port, Proto => 'tcp',
                                     Timeout => 2)
        or die "redis: cannot connect to 127.0.0.1:$port: $!\n";
    my $oks = 1;
    if ($Password ne '') {
        print $sock '*2' . "\r\n\$4\r\nAUTH\r\n\$" . length($Password)
                    . "\r\n$Password\r\n";
        $oks++;
    }
    print $sock "*1\r\n\$7\r\nMONITOR\r\n";

    my $self = bless { sock => $sock, buf => '', lines => [] },
                     'WsRelay::Sentinel::Monitor';

    # +OK first (and one for AUTH)
    my $deadline = time + 2;
    while ((() = $self->{buf} =~ /\r\n/g) < $oks) {
        die "redis: MONITOR not answered on $port\n" if time > $deadline;
        $self->read(0.1);
    }
    $self->{buf} =~ s/\A(?:\+OK\r\n){$oks}//
        or die "redis: MONITOR refused: $self->{buf}\n";

    return $self;
}


# --- processes ---------------------------------------------------------------

sub running {
    my $port = shift;

    my $pid = $Pid{$port} or return 0;
    return 0 if waitpid($pid, WNOHANG) == $pid;
    return kill 0, $pid;
}

sub server_running { running(@_) }

sub answers {
    my $port = shift;

    my $pong = eval { server_cmd($port, 'PING') };
    return defined $pong && $pong eq 'PONG';
}

# server_start($port, @args): a Redis (no persistence) on $port with
# these more arguments, or with those of its last start; a sentinel when
# $port is a sentinel's (its configuration written anew).
sub server_start {
    my ($port, @args) = @_;

    die "sentinel set: port $port is not one of the set\n"
        if $port < $Base || $port > $Base + 5;

    @args = @{ $Args{$port} || [] } unless @args;
    return $port if running($port);

    my $dir = dir();
    my @cmd;

    if (grep { $_ == $port } sentinel_ports()) {
        my $conf = "$dir/sentinel-$port.conf";
        open my $out, '>', $conf or die "$conf: $!\n";
        print $out <<_EOC_;
port $port
bind 127.0.0.1
protected-mode no
daemonize no
dir $dir
logfile $dir/sentinel-$port.log
sentinel resolve-hostnames no
sentinel monitor $Name 127.0.0.1 $Base 2
sentinel down-after-milliseconds $Name 1000
sentinel failover-timeout $Name 5000
sentinel parallel-syncs $Name 1
_EOC_
        print $out "requirepass $SentinelPassword\n"
            if $SentinelPassword ne '';
        print $out "sentinel auth-pass $Name $Password\n" if $Password ne '';
        close $out;
        @cmd = ('redis-server', $conf, '--sentinel');

    } else {
        @cmd = ('redis-server', '--port', $port, '--bind', '127.0.0.1',
                '--save', '', '--appendonly', 'no', '--dir', $dir,
                '--dbfilename', "dump-$port.rdb",
                '--logfile', "$dir/redis-$port.log", '--daemonize', 'no',
                '--protected-mode', 'no',
                ($Password ne '' ? ('--requirepass', $Password,
                                    '--masterauth', $Password) : ()),
                @args);
    }

    my $pid = fork;
    die "fork: $!\n" unless defined $pid;

    if ($pid == 0) {
        # its own process group: a Ctrl-C aimed at the tests is ours
        setpgrp(0, 0);
        exec @cmd or POSIX::_exit(127);
    }

    $Pid{$port} = $pid;
    $Args{$port} = \@args;

    WsRelay::Test::wait_for(sub { answers($port) }, 5)
        or die "redis-server did not answer on port $port (see $dir)\n";

    return $port;
}

# SIGKILL: the sudden death of a server
sub server_kill {
    my $port = shift;

    return unless running($port);
    kill 'KILL', $Pid{$port};
    waitpid $Pid{$port}, 0;
    delete $Pid{$port};
}

sub server_stop {
    my $port = shift;

    return unless running($port);
    my $pid = $Pid{$port};
    kill 'CONT', $pid;
    kill 'TERM', $pid;
    WsRelay::Test::wait_for(sub { !running($port) }, 5) or kill 'KILL', $pid;
    waitpid $pid, 0;
    delete $Pid{$port};
}

# SIGSTOP: the server hangs with its connections open
sub server_pause {
    my $port = shift;

    kill 'STOP', $Pid{$port} if running($port);
}

sub server_resume {
    my $port = shift;

    kill 'CONT', $Pid{$port} if running($port);
}

# the spare Redis, an empty master
sub spare_start { server_start(spare_port(), '--appendonly', 'no') }

sub sentinel_stop_all {
    server_stop($_) for sort { $a <=> $b } keys %Pid;
}

# The set as a block expects it at its start: every process of an
# earlier block stopped, then a new master (empty), its replica and three
# sentinels that know both and each other (each sentinel's own view:
# the master, one replica with its link up, two other sentinels).
# sentinel_fresh(password => ..., sentinel_password => ...): the Redis
# servers ask for the first (requirepass, masterauth, and the sentinels'
# auth-pass), the sentinels for the second.
sub sentinel_fresh {
    my (%o) = @_;

    sentinel_stop_all();
    $Password = $o{password} // '';
    $SentinelPassword = $o{sentinel_password} // '';

    server_start($Base, '--appendonly', 'no');
    server_start($Base + 1, '--replicaof', '127.0.0.1', $Base);
    server_start($_) for sentinel_ports();

    my $why;
    my $ready = WsRelay::Test::wait_for(sub {
        for my $i (0 .. 2) {
            my $m = eval { +{ @{ sentinel_cmd($i, 'SENTINEL', 'MASTER',
                                              $Name) } } };
            my $r = eval { sentinel_cmd($i, 'SENTINEL', 'REPLICAS', $Name) };

            if (!$m || ($m->{flags} // '') ne 'master'
                || ($m->{port} // 0) != $Base
                || ($m->{'num-other-sentinels'} // 0) != 2)
            {
                $why = "sentinel $i: " . join ' ', %{ $m || {} };
                return 0;
            }

            my @ok = grep { my %s = @$_;
                            $s{flags} eq 'slave' && $s{port} == $Base + 1
                            && $s{'master-link-status'} eq 'ok' }
                     @{ $r || [] };
            if (@ok != 1) {
                $why = "sentinel $i does not see the replica ready";
                return 0;
            }
        }
        return 1;
    }, 30);

    die "the sentinel set is not ready after 30 s: $why (see " . dir()
        . ")\n" unless $ready;

    wait_synced($Base, $Base + 1, 10)
        or die "the replica did not sync (see " . dir() . ")\n";
}


# interrupted runs stop the servers too, through END
my %SigNum = (HUP => 1, INT => 2, TERM => 15);
for my $sig (keys %SigNum) {
    $SIG{$sig} = sub { exit 128 + $SigNum{$sig} } unless $SIG{$sig};
}

END {
    local $?;

    if ($$ == $Starter) {
        for my $port (keys %Pid) {
            my $pid = $Pid{$port};
            next unless running($port);
            kill 'CONT', $pid;
            kill 'TERM', $pid;
        }
        for my $port (keys %Pid) {
            my $pid = $Pid{$port};
            WsRelay::Test::wait_for(sub { !running($port) }, 5)
                or kill 'KILL', $pid;
            waitpid $pid, 0;
        }
    }
}


sub import {
    my ($pkg, @symbols) = @_;
    my $caller = caller;

    # also into main ("eval" sections) and into ws_session code
    Exporter::export($pkg, $caller, @symbols);
    Exporter::export($pkg, 'main', @symbols) if $caller ne 'main';
    Exporter::export($pkg, 'WsRelay::Test::Session', @symbols);
}


package WsRelay::Sentinel::Monitor;

use Time::HiRes qw(time);

sub read {
    my ($self, $secs) = @_;

    return 0 unless IO::Select->new($self->{sock})->can_read($secs);
    my $n = sysread($self->{sock}, $self->{buf}, 65536, length $self->{buf});
    $self->{eof} = 1 unless $n;
    return $n;
}

# every command seen since the last call: [time, addr, command, args...]
# (the command upper-cased)
sub lines {
    my $self = shift;

    1 while !$self->{eof} && $self->read(0);

    my @out;
    while ($self->{buf} =~ s/\A\+([^\r\n]*)\r\n//) {
        my $line = $1;
        next unless $line =~ /^(\d+\.\d+) \[\d+ ([^\]]+)\] (.*)$/;
        my ($t, $addr, $rest) = ($1, $2, $3);
        my @args;
        while ($rest =~ /"((?:[^"\\]|\\.)*)"/g) {
            push @args, $1;
        }
        $args[0] = uc($args[0] // '');
        push @out, [$t, $addr, @args];
    }

    return @out;
}

sub stop {
    my $self = shift;

    close $self->{sock} if $self->{sock};
    delete $self->{sock};
}

sub DESTROY { $_[0]->stop }

1;
