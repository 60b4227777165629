package WsRelay::Cluster;

# A Redis Cluster for the test suites: three masters and a replica of
# each (cluster-node-timeout 1000), all on 127.0.0.1 on the ports
# $ENV{TEST_NGINX_REDIS_PORT} (default 6399) + 10 and up, above those of
# WsRelay::Sentinel (port + 1 to port + 6):
#
#   port + 10 to port + 15   the six nodes; "redis-cli --cluster create"
#                            makes three of them masters, with the slots
#                            0-5460, 5461-10922 and 10923-16383, and the
#                            others their replicas
#   port + 16                a spare node (spare_start): a master with no
#                            slot, for resharding, or a seed that is down
#
# and each node's cluster bus on its port + 10000. Who is a master
# changes (failovers, slot migrations): tests ask masters(),
# master_of_slot() and replica_of(), never the order of the ports.
#
# Each block gets new nodes, in a temporary directory of their own
# (nodes-<port>.conf, logs), not in the test server root, which
# Test::Nginx empties between blocks. cluster_fresh() stops those of
# the block before (and, once, checks key_slot() against CLUSTER
# KEYSLOT), cluster_stop_all() stops them all; everything started here
# is stopped at exit, even when a test dies or is interrupted.
#
#   use WsRelay::Cluster;
#   add_block_preprocessor(sub { cluster_fresh() });
#   add_test_cleanup_handler(sub { cluster_stop_all() });
#   --- http_config
#       ws_relay_redis cluster=$TEST_NGINX_CLUSTER;
#
# Session code ("--- ws_session") sees these functions too.

use strict;
use warnings;

use Exporter ();
use File::Path qw(make_path);
use File::Temp ();
use IO::Socket::INET ();
use POSIX qw(WNOHANG);
use Time::HiRes qw(sleep time);

use WsRelay::Test ();
use WsRelay::Redis ();

our @EXPORT = qw(
    cluster_fresh cluster_stop_all cluster_ports spare_port cluster_dir
    cluster_cmd cluster_settled key_slot key_owner master_of_slot masters
    replica_of node_id node_role user_on_master cluster_failover
    kill_master migrate_slot shard_numsub shard_subscribers node_start
    node_kill node_stop node_running spare_start node_clients node_link
);

use constant SLOTS => 16384;

my $Base = ($ENV{TEST_NGINX_REDIS_PORT} || 6399) + 10;

# what the configurations name: "127.0.0.1:<node 1>,...,127.0.0.1:<node 6>"
$ENV{TEST_NGINX_CLUSTER} = join ',', map { "127.0.0.1:$_" } $Base .. $Base + 5;

my ($Top, $Dir);
my $Fresh = 0;
my $Starter = $$;

# port => pid, and port => the arguments it was started with
my (%Pid, %Args);

# the nodes' password (requirepass and masterauth), or ''
my $Password = '';

my $SlotChecked;


sub cluster_ports { ($Base .. $Base + 5) }
sub spare_port { $Base + 6 }

# the directory of this block's nodes
sub cluster_dir { $Dir }

sub all_ports { ($Base .. $Base + 6) }


# --- talking to a node -------------------------------------------------------

# cluster_cmd($port, @args): one command to one node, one reply, as
# redis_cmd gives it. Nothing is followed: a redirection (MOVED, ASK) is
# an error reply like any other, and dies as "redis: MOVED <slot>
# 127.0.0.1:<port>" (also on another error, or after 2 s).
sub cluster_cmd {
    my ($port, @args) = @_;

    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                     PeerPort => $port, Proto => 'tcp',
                                     Timeout => 2)
        or die "redis: cannot connect to 127.0.0.1:$port: $!\n";

    my @cmds = (($Password ne '' ? (['AUTH', $Password]) : ()), \@args);

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

# my $link = node_link($port); $link->cmd(@args); $link->close: one
# connection kept open for several commands (authenticated), for a node
# that may refuse new ones meanwhile (CONFIG SET maxclients)
sub node_link {
    my $port = shift;

    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                     PeerPort => $port, Proto => 'tcp',
                                     Timeout => 2)
        or die "redis: cannot connect to 127.0.0.1:$port: $!\n";

    my $link = bless { sock => $sock, buf => '' }, 'WsRelay::Cluster::Link';
    $link->cmd('AUTH', $Password) if $Password ne '';
    return $link;
}

# PUBSUB SHARDNUMSUB on one node: the subscribers of each channel there,
# in order (in scalar context, of the first)
sub shard_numsub {
    my ($port, @channels) = @_;

    my %n = @{ cluster_cmd($port, 'PUBSUB', 'SHARDNUMSUB', @channels) };
    my @n = map { $n{$_} } @channels;
    return wantarray ? @n : $n[0];
}

# the subscribers of a shard channel on every node that answers:
# {port => n} (nodes with none left out)
sub shard_subscribers {
    my $channel = shift;

    my %n;
    for my $port (grep { running($_) } all_ports()) {
        my $n = eval { scalar shard_numsub($port, $channel) } or next;
        $n{$port} = $n;
    }
    return \%n;
}

# CLIENT LIST of a node: one hash per client, leaving out the connection
# asking, the links of its replicas or of its master (flags S and M) and
# MONITORs
sub node_clients {
    my $port = shift;

    my $list = cluster_cmd($port, 'CLIENT', 'LIST');

    my @clients = map { +{ map { /^([^=]+)=(.*)$/ ? ($1, $2) : () }
                           split / / } } split /\r?\n/, $list;
    return grep { ($_->{cmd} // '') !~ /^client\b/
                  && ($_->{flags} // '') !~ /[SMO]/ } @clients;
}


# --- slots -------------------------------------------------------------------

# CRC16-CCITT (XMODEM): polynomial 0x1021, initial value 0, as Redis
# Cluster hashes keys
sub crc16 {
    my $bytes = shift;

    my $crc = 0;
    for my $byte (unpack 'C*', $bytes) {
        $crc ^= $byte << 8;
        for (1 .. 8) {
            $crc = $crc & 0x8000 ? (($crc << 1) ^ 0x1021) & 0xffff
                                 : ($crc << 1) & 0xffff;
        }
    }
    return $crc;
}

# The slot of a key or shard channel (bytes), with the hash tag rule:
# when the key has a "{" and a "}" after it with something between, only
# what lies between the first "{" and the first "}" after it is hashed.
sub key_slot {
    my $key = shift;

    my $open = index $key, '{';
    if ($open >= 0) {
        my $close = index $key, '}', $open + 1;
        $key = substr $key, $open + 1, $close - $open - 1
            if $close > $open + 1;
    }
    return crc16($key) % SLOTS;
}

# key_slot() against CLUSTER KEYSLOT of the node on $port, once: keys
# with and without tags, empty tags, nested braces, UTF-8, the relay's
sub check_key_slot {
    my $port = shift;

    return if $SlotChecked;

    my @keys = ('', 'a', 'foo', '123456789', '{user1000}.following',
                '{user1000}.followers', 'foo{}{bar}', 'foo{{bar}}zap',
                'foo{bar}{zap}', '{}', '}{', 'x{', '{y', "caf\xc3\xa9",
                "{\xe2\x98\xba}", 'ws_relay:u:{alice}', 'ws_relay:h:{alice}',
                'ws_relay:m:{alice}', 'app:u:{}}', 'a{b}c{d}');
    push @keys, join '', map { chr(32 + int rand 95) } 1 .. 1 + int rand 20
        for 1 .. 200;

    my @wrong;
    for my $key (@keys) {
        my $want = cluster_cmd($port, 'CLUSTER', 'KEYSLOT', $key);
        push @wrong, "\"$key\": " . key_slot($key) . ", Redis says $want"
            if key_slot($key) != $want;
    }
    die "key_slot() is wrong:\n" . join("\n", @wrong) . "\n" if @wrong;

    $SlotChecked = 1;
}

# CLUSTER NODES of a node: one hash per node ({id, port, flags, master,
# epoch, link, slots => [[first, last], ...], myself}); slots being
# imported or migrated ("[1234->-id]") are left out
sub cluster_nodes {
    my $port = shift;

    my @nodes;
    for my $line (split /\r?\n/, cluster_cmd($port, 'CLUSTER', 'NODES')) {
        my ($id, $addr, $flags, $master, $ping, $pong, $epoch, $link,
            @slots) = split / /, $line;
        my ($p) = $addr =~ /:(\d+)@/;
        push @nodes, {
            id => $id, port => $p // 0, flags => $flags, master => $master,
            epoch => $epoch, link => $link,
            myself => $flags =~ /\bmyself\b/ ? 1 : 0,
            slots => [ map { /^(\d+)(?:-(\d+))?$/ ? [$1, $2 // $1] : () }
                       @slots ],
        };
    }
    return @nodes;
}

# what a node says of itself: its line of CLUSTER NODES, or undef
sub self_view {
    my $port = shift;

    my ($me) = grep { $_->{myself} } eval { cluster_nodes($port) };
    return $me;
}

# "master", "slave" (per CLUSTER NODES of the node itself), undef when
# it does not answer
sub node_role {
    my $port = shift;

    my $me = self_view($port) or return undef;
    return $me->{flags} =~ /\bmaster\b/ ? 'master'
         : $me->{flags} =~ /\bslave\b/ ? 'slave' : $me->{flags};
}

# the node id of the node on $port: its own word, or, when it is down,
# what the other nodes know of it
sub node_id {
    my $port = shift;

    my $id = eval { cluster_cmd($port, 'CLUSTER', 'MYID') };
    return $id if defined $id && $id ne '';

    for my $other (grep { $_ != $port && running($_) } all_ports()) {
        my ($n) = grep { $_->{port} == $port } eval { cluster_nodes($other) };
        return $n->{id} if $n;
    }
    return undef;
}

# The owner of every slot: an array of 16384 ports (undef where none).
# Each running master claims the slots it says it serves; where two
# claim a slot (one of them has not heard the news yet), the greater
# config epoch wins, as in the cluster.
sub slot_owners {
    my (@owner, @epoch);

    for my $port (grep { running($_) } all_ports()) {
        my $me = self_view($port) or next;
        next unless $me->{flags} =~ /\bmaster\b/;
        for my $range (@{ $me->{slots} }) {
            for my $slot ($range->[0] .. $range->[1]) {
                next if defined $epoch[$slot] && $epoch[$slot] >= $me->{epoch};
                ($owner[$slot], $epoch[$slot]) = ($port, $me->{epoch});
            }
        }
    }
    return \@owner;
}

# the port of the master serving a slot now, undef when none does
sub master_of_slot {
    my $slot = shift;

    return slot_owners()->[$slot];
}

# the port of the master serving a key or a shard channel
sub key_owner { master_of_slot(key_slot($_[0])) }

# the ports of the masters serving slots now, in order (in scalar
# context, how many)
sub masters {
    my %m = map { $_ => 1 } grep { defined } @{ slot_owners() };
    my @ports = sort { $a <=> $b } keys %m;
    return @ports;
}

# the running replicas of the master on $port, in order (in scalar
# context, the first)
sub replica_of {
    my $master = shift;

    my $id = node_id($master) // return;
    my @r = grep { my $me = self_view($_);
                   $me && $me->{flags} =~ /\bslave\b/ && $me->{master} eq $id }
            grep { $_ != $master && running($_) } all_ports();
    return wantarray ? @r : $r[0];
}

# user_on_master($port, $prefix, $stem): the first user id "<stem>1",
# "<stem>2", ... (stem "user") whose channel "<prefix>u:{<user>}" (prefix
# "ws_relay:") is in a slot of the master on $port
sub user_on_master {
    my ($port, $prefix, $stem) = @_;

    $prefix //= 'ws_relay:';
    $stem //= 'user';

    my $owners = slot_owners();
    for my $n (1 .. 100_000) {
        my $user = "$stem$n";
        my $slot = key_slot("${prefix}u:{$user}");
        return $user if ($owners->[$slot] // 0) == $port;
    }
    die "user_on_master: no user \"$stem<n>\" on port $port\n";
}


# --- the whole cluster -------------------------------------------------------

# The cluster as its nodes see it, agreed: every running node says
# cluster_state:ok and gives the same CLUSTER SLOTS (each slot served,
# by the same master, with the same replicas); with replicas => n, each
# master has at least n of them, each in sync with it. In list
# context: (true) or (false, why not).
sub cluster_settled {
    my (%o) = @_;

    my @ports = grep { running($_) } all_ports();
    my ($seen, $why);

    for my $port (@ports) {
        my $info = eval { cluster_cmd($port, 'CLUSTER', 'INFO') } // '';
        if ($info !~ /^cluster_state:ok/m) {
            $why = "node $port: " . ($info =~ /^(cluster_state:\w+)/m ? $1
                                     : $@ || 'no CLUSTER INFO');
            last;
        }

        my $slots = eval { cluster_cmd($port, 'CLUSTER', 'SLOTS') };
        if (ref $slots ne 'ARRAY') {
            $why = "node $port: no CLUSTER SLOTS: $@";
            last;
        }

        # "first-last:master/replica,replica" for each range, sorted
        my ($covered, @ranges) = (0);
        for my $r (@$slots) {
            my ($first, $last, $master, @replicas) = @$r;
            $covered += $last - $first + 1;
            push @ranges, "$first-$last:$master->[1]/"
                          . join ',', sort map { $_->[1] } @replicas;
        }
        my $map = join ' ', sort { ($a =~ /^(\d+)/)[0] <=> ($b =~ /^(\d+)/)[0] }
                            @ranges;

        if ($covered != SLOTS) {
            $why = "node $port: $covered slots served";
            last;
        }

        $seen //= $map;
        if ($map ne $seen) {
            $why = "node $port: $map; another: $seen";
            last;
        }

        if ($o{replicas}) {
            my %n;
            for my $r (@$slots) {
                $n{ $r->[2][1] } = @$r - 3;
            }
            if (my ($m) = grep { $n{$_} < $o{replicas} } sort keys %n) {
                $why = "master $m has $n{$m} replica(s)";
                last;
            }
        }
    }

    if (!$why && $o{replicas}) {
        for my $port (@ports) {
            next unless (node_role($port) // '') eq 'slave';
            my $info = eval { cluster_cmd($port, 'INFO', 'replication') }
                       // '';
            next if $info =~ /^master_link_status:up/m
                    && $info !~ /^master_sync_in_progress:1/m;
            $why = "replica $port: link to its master not up";
            last;
        }
    }

    $why = 'no node runs' if !$why && !defined $seen;

    return wantarray ? (!$why, $why) : !$why;
}

# waits until cluster_settled(%o) holds, calling tick between polls;
# (true, time) or (false, why) after $secs
sub wait_settled {
    my ($secs, %o) = @_;

    my $tick = delete $o{tick};
    my $deadline = time + $secs;
    my ($ok, $why);

    while (1) {
        ($ok, $why) = cluster_settled(%o);
        return (1, time) if $ok;
        last if time >= $deadline;
        $tick ? $tick->() : sleep 0.05;
    }
    return (0, $why);
}

# cluster_failover($replica, secs => 15, tick => sub {...}, how => 'FORCE'):
# CLUSTER FAILOVER on a replica (with FORCE or TAKEOVER when asked),
# then waits until the replica is a master and every node agrees on
# the slots. Returns the time it was first seen a master, or () when
# the cluster did not settle so in time (tick runs between polls).
sub cluster_failover {
    my ($replica, %o) = @_;

    my $secs = $o{secs} // 15;
    my $deadline = time + $secs;

    cluster_cmd($replica, 'CLUSTER', 'FAILOVER', ($o{how} ? $o{how} : ()));

    my $promoted;
    while (time < $deadline) {
        $promoted //= time if (node_role($replica) // '') eq 'master';
        if ($promoted && cluster_settled(replicas => $o{replicas} // 0)
            && grep { $_ == $replica } masters())
        {
            return $promoted;
        }
        $o{tick} ? $o{tick}->() : sleep 0.05;
    }
    return ();
}

# kill_master($port, secs => 20, tick => sub {...}): SIGKILL of a master,
# then waits until one of its replicas took its slots and every node
# that runs agrees. Returns (the new master's port, the time it was
# first seen a master), or () after $secs.
sub kill_master {
    my ($port, %o) = @_;

    my @replicas = replica_of($port);
    die "kill_master: port $port has no replica\n" unless @replicas;

    node_kill($port);

    my $deadline = time + ($o{secs} // 20);
    my ($new, $promoted);
    while (time < $deadline) {
        if (!$new) {
            ($new) = grep { (node_role($_) // '') eq 'master' } @replicas;
            $promoted = time if $new;
        }
        return ($new, $promoted)
            if $new && cluster_settled() && grep { $_ == $new } masters();
        $o{tick} ? $o{tick}->() : sleep 0.05;
    }
    return ();
}

# migrate_slot($slot, $from, $to, migrating => sub {...},
#              keys_moved => sub {...}, tick => sub {...}, batch => 100):
# a slot moves from one master to another as redis-cli --cluster
# reshard moves it: CLUSTER SETSLOT IMPORTING on the target, MIGRATING
# on the source, then (after the migrating callback: traffic while the
# slot is half way) MIGRATE of every key of the slot, CLUSTER
# GETKEYSINSLOT until there is none (tick between batches), then (after
# the keys_moved callback) SETSLOT NODE on the target, the source, and
# the other masters. Waits until every node agrees (10 s); returns the
# number of keys moved, dies when something fails.
sub migrate_slot {
    my ($slot, $from, $to, %o) = @_;

    my ($from_id, $to_id) = (node_id($from), node_id($to));
    die "migrate_slot: no node id for $from or $to\n"
        unless $from_id && $to_id;
    my $batch = $o{batch} // 100;

    cluster_cmd($to, 'CLUSTER', 'SETSLOT', $slot, 'IMPORTING', $from_id);
    cluster_cmd($from, 'CLUSTER', 'SETSLOT', $slot, 'MIGRATING', $to_id);
    $o{migrating}->() if $o{migrating};

    my $moved = 0;
    my $move_keys = sub {
        while (1) {
            my $keys = cluster_cmd($from, 'CLUSTER', 'GETKEYSINSLOT', $slot,
                                   $batch);
            last unless @$keys;
            cluster_cmd($from, 'MIGRATE', '127.0.0.1', $to, '', 0, 5000,
                        ($Password ne '' ? ('AUTH', $Password) : ()),
                        'KEYS', @$keys);
            $moved += @$keys;
            $o{tick}->() if $o{tick};
        }
    };

    $move_keys->();
    if ($o{keys_moved}) {
        $o{keys_moved}->($moved);
        # a key the source still had is served there until it moves;
        # one made meanwhile was sent to the target (ASK)
        $move_keys->();
    }

    my @others = grep { $_ != $from && $_ != $to } masters();
    cluster_cmd($_, 'CLUSTER', 'SETSLOT', $slot, 'NODE', $to_id)
        for $to, $from, @others;

    my ($ok, $why) = wait_settled(10, tick => $o{tick});
    die "migrate_slot: the nodes do not agree after 10 s: $why\n" unless $ok;
    my $owner = master_of_slot($slot) // 'none';
    die "migrate_slot: slot $slot is served by $owner, not $to\n"
        unless $owner eq $to;

    return $moved;
}


# --- processes ---------------------------------------------------------------

sub running {
    my $port = shift;

    my $pid = $Pid{$port} or return 0;
    return 0 if waitpid($pid, WNOHANG) == $pid;
    return kill 0, $pid;
}

sub node_running { running(@_) }

sub answers {
    my $port = shift;

    my $pong = eval { cluster_cmd($port, 'PING') };
    return defined $pong && $pong eq 'PONG';
}

# node_start($port, @args): a cluster node (no persistence) on $port with
# these more arguments, or with those of its last start; its
# nodes-<port>.conf is kept, so a node started again rejoins the cluster
# it knew.
sub node_start {
    my ($port, @args) = @_;

    die "cluster: port $port is not one of the cluster's\n"
        unless grep { $_ == $port } all_ports();

    @args = @{ $Args{$port} || [] } unless @args;
    return $port if running($port);

    # a replica syncs at once (no diskless delay), and its master pings
    # it every second: CLUSTER SLOTS lists a replica only once its
    # replication offset is not 0 (10 s by default on an idle master);
    # a master stopped does not wait for its replicas
    my @cmd = ('redis-server', '--port', $port, '--bind', '127.0.0.1',
               '--cluster-enabled', 'yes',
               '--cluster-config-file', "$Dir/nodes-$port.conf",
               '--cluster-node-timeout', 1000,
               '--repl-diskless-sync-delay', 0,
               '--repl-ping-replica-period', 1,
               '--shutdown-on-sigterm', 'now',
               '--save', '', '--appendonly', 'no', '--dir', $Dir,
               '--dbfilename', "dump-$port.rdb",
               '--logfile', "$Dir/redis-$port.log", '--daemonize', 'no',
               '--protected-mode', 'no',
               ($Password ne '' ? ('--requirepass', $Password,
                                   '--masterauth', $Password) : ()),
               @args);

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
        or die "redis-server did not answer on port $port (see $Dir)\n";

    return $port;
}

# SIGKILL: the sudden death of a node
sub node_kill {
    my $port = shift;

    return unless running($port);
    kill 'KILL', $Pid{$port};
    waitpid $Pid{$port}, 0;
    delete $Pid{$port};
}

sub node_stop {
    my $port = shift;

    return unless running($port);
    my $pid = $Pid{$port};
    kill 'CONT', $pid;
    kill 'TERM', $pid;
    WsRelay::Test::wait_for(sub { !running($port) }, 5) or kill 'KILL', $pid;
    waitpid $pid, 0;
    delete $Pid{$port};
}

# the spare node, an empty master that joins the cluster (CLUSTER MEET)
# with no slot: once every node knows it and it knows every slot
sub spare_start {
    my $port = node_start(spare_port());

    cluster_cmd($port, 'CLUSTER', 'MEET', '127.0.0.1', $Base);
    WsRelay::Test::wait_for(sub {
        !grep { my $p = $_;
                !grep { $_->{port} == $port && $_->{flags} !~ /handshake/ }
                      eval { cluster_nodes($p) } }
              grep { running($_) } all_ports();
    }, 10) or die "the spare node did not join the cluster (see $Dir)\n";

    my ($ok, $why) = wait_settled(10);
    die "the spare node joined, the cluster is not settled: $why\n"
        unless $ok;

    return $port;
}

sub cluster_stop_all {
    node_stop($_) for sort { $a <=> $b } keys %Pid;
}

# runs a program with its output to a file; its exit status
sub run_logged {
    my ($log, @cmd) = @_;

    my $pid = fork;
    die "fork: $!\n" unless defined $pid;

    if ($pid == 0) {
        open STDOUT, '>', $log or POSIX::_exit(126);
        open STDERR, '>&', \*STDOUT or POSIX::_exit(126);
        open STDIN, '<', '/dev/null';
        exec @cmd or POSIX::_exit(127);
    }

    waitpid $pid, 0;
    return $?;
}

sub slurp {
    my $file = shift;

    open my $in, '<', $file or return '';
    my $text = do { local $/; <$in> };
    close $in;
    return $text;
}

# The cluster as a block expects it at its start: every node of an
# earlier block stopped, then six new nodes made into a cluster of three
# masters with a replica each, every node saying cluster_state:ok and
# the same slots, each replica in sync. cluster_fresh(password => ...):
# the nodes ask for it (requirepass, masterauth).
sub cluster_fresh {
    my (%o) = @_;

    cluster_stop_all();
    $Password = $o{password} // '';

    $Top ||= File::Temp::tempdir('ws-relay-cluster-XXXXXX', TMPDIR => 1,
                                 CLEANUP => 1);
    $Dir = "$Top/" . ++$Fresh;
    make_path($Dir);

    node_start($_) for cluster_ports();

    my $status = run_logged("$Dir/create.log", 'redis-cli',
                            ($Password ne '' ? ('-a', $Password,
                                                '--no-auth-warning') : ()),
                            '--cluster', 'create',
                            (map { "127.0.0.1:$_" } cluster_ports()),
                            '--cluster-replicas', 1, '--cluster-yes');
    die "redis-cli --cluster create failed (status $status):\n"
        . slurp("$Dir/create.log") if $status;

    my ($ok, $why) = wait_settled(30, replicas => 1);
    die "the cluster is not ready after 30 s: $why (see $Dir)\n" unless $ok;

    my @m = masters();
    die "the cluster has " . @m . " masters, not 3 (see $Dir)\n" if @m != 3;

    check_key_slot($m[0]);
}


# interrupted runs stop the nodes too, through END
my %SigNum = (HUP => 1, INT => 2, TERM => 15);
for my $sig (keys %SigNum) {
    $SIG{$sig} = sub { exit 128 + $SigNum{$sig} } unless $SIG{$sig};
}

END {
    local $?;

    if ($$ == $Starter) {
        for my $port (keys %Pid) {
            next unless running($port);
            kill 'CONT', $Pid{$port};
            kill 'TERM', $Pid{$port};
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



package WsRelay::Cluster::Link;

sub cmd {
    my ($self, @args) = @_;

    my $req = '*' . @args . "\r\n";
    $req .= '$' . length($_) . "\r\n$_\r\n" for @args;
    print { $self->{sock} } $req;
    return WsRelay::Redis::read_reply($self->{sock}, \$self->{buf});
}

sub close {
    my $self = shift;

    CORE::close($self->{sock}) if $self->{sock};
    delete $self->{sock};
}

sub DESTROY { $_[0]->close }

1;
