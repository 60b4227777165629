package WsRelay::Abuse;

# Tools for the abuse suite (t/030-abuse.t), beside WsRelay::Test and
# WsRelay::Redis:
#
#   - abuse_defaults(): the suite's config (a ws_relay location, the
#     connections API, a Redis key prefix of its own per block);
#   - abuse_fork(sub { ... }): runs an abusive client in a child process,
#     so that it runs *while* the test process plays well-behaved clients;
#     the child reports "ready" and a result through a pipe;
#   - probe_open(): well-behaved clients on every worker, registered;
#     $probe->during($abuse) plays ping/pong and chats between them (on
#     one worker and across workers) until the abuse is over, timing
#     every round trip, and $probe->ok_responsive($stats) asserts that
#     none failed and the slowest stayed under a bound;
#   - error log marks and counts, /api/connections, and what Redis holds
#     of the block's users.
#
#   use Test::Nginx::Socket 'no_plan';
#   use WsRelay::Test;
#   use WsRelay::Redis;
#   use WsRelay::Abuse;
#
# Session code ("--- ws_session") sees these functions too.

use strict;
use warnings;

use Errno qw(EAGAIN EWOULDBLOCK EINTR EINPROGRESS);
use Exporter ();
use IO::Select ();
use IO::Socket::INET ();
use JSON::PP ();
use POSIX qw(WNOHANG);
use Socket qw(IPPROTO_TCP TCP_NODELAY SOL_SOCKET SO_RCVBUF);
use Time::HiRes qw(sleep time);
use Test::More ();

use WsRelay::Test ();
use WsRelay::Redis ();

our @EXPORT = qw(
    abuse_defaults abuse_prefix abuse_fork probe_open
    log_mark log_lines log_count api_connections
    redis_user_channels redis_presence redis_users_ok
    raw_connect raw_request server_port_now
);

my $JSON = JSON::PP->new->utf8->canonical->allow_nonref;

my @Prefixes;
my $Blocks = 0;


# --- suite defaults ----------------------------------------------------------

# Defaults for blocks without their own sections:
#   config: a ws_relay location /ws and /api/connections (+ $o{config})
#   http_config: ws_relay_redis on $TEST_NGINX_REDIS_PORT with the block's
#                own key prefix $TEST_NGINX_ABUSE_PREFIX (+ $o{http_config})
sub abuse_defaults {
    my (%o) = @_;

    my $config = "    location = /ws {\n        ws_relay;\n    }\n"
                 . "    location = /api/connections {\n"
                 . "        ws_relay_api connections;\n    }\n";

    my $http_config = "    ws_relay_redis 127.0.0.1:\$TEST_NGINX_REDIS_PORT"
                      . " prefix=\$TEST_NGINX_ABUSE_PREFIX;\n";

    (my $file = $0) =~ s{.*/|\.t$}{}g;
    $file =~ s/[^A-Za-z0-9]+/_/g;

    Test::Nginx::Socket::add_block_preprocessor(sub {
        my $block = shift;

        $ENV{TEST_NGINX_ABUSE_PREFIX} = "t:$file:$$:" . ++$Blocks . ':';
        push @Prefixes, $ENV{TEST_NGINX_ABUSE_PREFIX};

        $block->set_value('config', $config) unless defined $block->config;
        $block->set_value('http_config', $http_config)
            unless defined $block->http_config;
    });
}

sub abuse_prefix { $ENV{TEST_NGINX_ABUSE_PREFIX} // 'ws_relay:' }

# the keys that outlive a block: the lease sets of its prefixes
END {
    local $?;
    for my $prefix (@Prefixes) {
        eval { local $SIG{__DIE__}; WsRelay::Redis::redis_cmd('DEL',
                                                       "${prefix}nodes") };
    }
}

sub block_name {
    no warnings 'once';
    return $WsRelay::Test::BlockName // '';
}

sub server_port_now {
    return Test::Nginx::Util::server_port()
        if defined &Test::Nginx::Util::server_port;
    return $ENV{TEST_NGINX_SERVER_PORT} // 1984;
}


# --- the error log -----------------------------------------------------------

sub error_log_file {
    my $root = defined &Test::Nginx::Util::server_root
               ? Test::Nginx::Util::server_root()
               : $ENV{TEST_NGINX_SERVER_ROOT};
    return "$root/logs/error.log";
}

# log_mark(): where the error log ends now; log_lines($re, $mark): its
# lines matching $re written since; log_count: how many.
sub log_mark { -s error_log_file() // 0 }

sub log_lines {
    my ($re, $mark) = @_;

    open my $in, '<', error_log_file() or return ();
    seek $in, $mark // 0, 0;
    my @lines = grep { /$re/ } <$in>;
    close $in;
    return @lines;
}

sub log_count { scalar(my @l = log_lines(@_)) }


# --- the API and Redis ---------------------------------------------------------

# /api/connections, decoded; dies unless it answers 200
sub api_connections {
    my ($status, $json) = WsRelay::Test::http_get_json('/api/connections');

    die "/api/connections: status $status\n" unless $status == 200 && $json;
    return $json;
}

# the users Redis routes to some worker: PUBSUB CHANNELS "<prefix>u:{*"
# with the prefix taken off, sorted
sub redis_user_channels {
    my $prefix = shift // abuse_prefix();

    my $chans = WsRelay::Redis::redis_cmd('PUBSUB', 'CHANNELS',
                                           "${prefix}u:{*");
    return sort map { substr $_, length("${prefix}u:{"), -1 } @$chans;
}

# the presence sets: { node => [sorted users] } of every
# "<prefix>node:*:users" key
sub redis_presence {
    my $prefix = shift // abuse_prefix();

    my %nodes;
    my $keys = WsRelay::Redis::redis_cmd('KEYS', "${prefix}node:*:users");

    for my $key (@$keys) {
        my ($node) = $key =~ /^\Q${prefix}node:\E(.*):users$/ or next;
        $nodes{$node} = [ sort @{ WsRelay::Redis::redis_cmd('SMEMBERS',
                                                             $key) } ];
    }

    return \%nodes;
}

# redis_users_ok([users], $desc): within 5 s, Redis routes exactly these
# users (one subscriber each) and its presence sets hold exactly them.
sub redis_users_ok {
    my ($want, $desc) = @_;

    my $want_s = join ' ', sort @$want;
    my ($chans, $pres, $numsub);

    WsRelay::Test::wait_for(sub {
        $chans = join ' ', redis_user_channels();
        my $p = redis_presence();
        $pres = join ' ', sort map { @$_ } values %$p;
        my @users = split ' ', $chans;
        my @n = @users ? WsRelay::Redis::redis_numsub(
                             map { abuse_prefix() . "u:{$_}" } @users) : ();
        $numsub = grep { $_ != 1 } @n;
        $chans eq $want_s && $pres eq $want_s && !$numsub;
    }, 5);

    my $name = block_name() . " - $desc";
    Test::More::is($chans, $want_s, "$name: channels")
        && Test::More::is($pres, $want_s, "$name: presence sets")
        && Test::More::is($numsub, 0, "$name: one subscriber per channel");
}


# --- raw sockets -------------------------------------------------------------

# a TCP connection to the test server; non-blocking unless asked
sub raw_connect {
    my (%o) = @_;

    my $sock = IO::Socket::INET->new(Proto => 'tcp') or die "socket: $!\n";

    if ($o{rcvbuf}) {
        setsockopt($sock, SOL_SOCKET, SO_RCVBUF, pack('i', $o{rcvbuf}))
            or die "setsockopt SO_RCVBUF: $!\n";
    }

    my $port = $o{port} // server_port_now();
    my $addr = Socket::pack_sockaddr_in($port,
                                        Socket::inet_aton('127.0.0.1'));
    connect($sock, $addr) or die "connect to 127.0.0.1:$port: $!\n";
    setsockopt($sock, IPPROTO_TCP, TCP_NODELAY, 1);
    $sock->blocking($o{blocking} // 0);

    return $sock;
}

# raw_request($bytes, timeout => 3): sends an HTTP request on a fresh
# connection and reads the response head. Returns {status, head, sent,
# why}: status undef when the server closed or reset the connection
# before a status line (why says which).
sub raw_request {
    my ($bytes, %o) = @_;

    local $SIG{PIPE} = 'IGNORE';

    my $sock = raw_connect(%o);
    my $sel = IO::Select->new($sock);
    my $deadline = time + ($o{timeout} // 3);
    my ($buf, $sent, $why) = ('', 0, '');

    # write what the server takes, reading meanwhile: it may answer (and
    # close) before it has read everything
    while (time < $deadline) {
        if ($sent < length $bytes) {
            my $n = syswrite($sock, $bytes, 65536, $sent);
            if (defined $n) {
                $sent += $n;
            } elsif ($! != EAGAIN && $! != EWOULDBLOCK && $! != EINTR) {
                $why = "write: $!";
                $sent = length $bytes;      # nothing more to write
            }
        }

        my $n = $sel->can_read($sent < length $bytes ? 0.01
                                                     : $deadline - time)
                ? sysread($sock, $buf, 65536, length $buf) : undef;

        last if $buf =~ /\r\n\r\n/;

        if (defined $n && $n == 0) {
            $why ||= 'eof';
            last;
        }

        if (!defined $n && $! && $! != EAGAIN && $! != EWOULDBLOCK
            && $! != EINTR && $sel->can_read(0))
        {
            $why = "read: $!";
            last;
        }
    }

    close $sock;

    my ($head) = $buf =~ /\A(.*?)\r\n\r\n/s;
    my ($status) = ($buf =~ m{\AHTTP/1\.[01] (\d{3})});

    return { status => $status, head => $head // $buf, sent => $sent,
             why => $status ? '' : ($why || 'timeout') };
}


# --- abuse in a child process --------------------------------------------------

# abuse_fork(sub { my $ctl = shift; ...; $ctl->ready(...); ...; return
#            {...} }, max => 50)
# runs the code in a child process. The child reports with
# $ctl->ready(key => value, ...) once the abuse is under way, and its
# return value (a hash ref) as its result, or an early result with
# $ctl->report({...}) after which it may $ctl->hold until the test
# releases it. It must not call Test::More (its counts would be lost);
# it ends with POSIX::_exit, so no END block of the test runs in it, and
# dies with the test (PR_SET_PDEATHSIG) or after max seconds.
sub abuse_fork {
    my ($code, %o) = @_;

    pipe(my $up_r, my $up_w) or die "pipe: $!\n";
    pipe(my $down_r, my $down_w) or die "pipe: $!\n";

    my $pid = fork;
    die "fork: $!\n" unless defined $pid;

    if ($pid == 0) {
        close $up_r;
        close $down_w;
        $up_w->autoflush(1);

        # SIGKILL when the test process dies (prctl PR_SET_PDEATHSIG)
        my $nr = defined &WsRelay::Test::SYS_prctl ? WsRelay::Test::SYS_prctl()
                 : defined &Test::Nginx::Util::SYS_prctl
                   ? Test::Nginx::Util::SYS_prctl()
                 : defined &main::SYS_prctl ? main::SYS_prctl() : undef;
        syscall($nr, 1, 9, 0, 0, 0) if defined $nr;

        $SIG{ALRM} = sub { POSIX::_exit(3) };
        $SIG{PIPE} = 'IGNORE';
        $SIG{$_} = 'DEFAULT' for qw(INT TERM HUP);
        alarm($o{max} // 50);

        my $ctl = bless { up => $up_w, down => $down_r },
                        'WsRelay::Abuse::Ctl';
        my $res = eval { $code->($ctl) };
        my $err = $@;

        if (!$ctl->{reported}) {
            $ctl->send($err ne '' ? { error => "$err" }
                                  : { result => $res // {} });
        }

        POSIX::_exit(0);
    }

    close $up_w;
    close $down_r;
    $up_r->blocking(0);

    return bless { pid => $pid, up => $up_r, down => $down_w, buf => '',
                   name => $o{name} // 'abuse' }, 'WsRelay::Abuse::Proc';
}


package WsRelay::Abuse::Ctl;

sub send {
    my ($self, $msg) = @_;

    syswrite $self->{up}, $JSON->encode($msg) . "\n";
}

sub ready {
    my ($self, %info) = @_;

    $self->send({ ready => \%info });
}

sub report {
    my ($self, $res) = @_;

    $self->{reported} = 1;
    $self->send({ result => $res });
}

# true once the test has released the child (or is gone)
sub released {
    my $self = shift;

    return IO::Select->new($self->{down})->can_read(0) ? 1 : 0;
}

# waits until the test releases the child
sub hold {
    my $self = shift;

    IO::Select->new($self->{down})->can_read(60);
}


package WsRelay::Abuse::Proc;

use POSIX qw(WNOHANG);
use Time::HiRes qw(sleep time);

# reads what the child reported so far
sub poll {
    my ($self, $timeout) = @_;

    my $sel = IO::Select->new($self->{up});

    while (!$self->{eof} && $sel->can_read($timeout // 0)) {
        my $n = sysread($self->{up}, $self->{buf}, 65536,
                        length $self->{buf});
        $self->{eof} = 1 if defined $n && $n == 0;
        last unless $n;
        $timeout = 0;
    }

    while ($self->{buf} =~ s/\A([^\n]*)\n//) {
        my $msg = $JSON->decode($1);
        $self->{ready} = $msg->{ready} if exists $msg->{ready};
        $self->{result} = $msg->{result} if exists $msg->{result};
        $self->{error} = $msg->{error} if exists $msg->{error};
    }

    if ($self->{eof} && !$self->{result} && !$self->{error}) {
        $self->{error} = "$self->{name}: the child ended without a result";
    }
}

# the child's ready info, waiting up to $timeout seconds; dies otherwise
sub wait_ready {
    my ($self, $timeout) = @_;

    my $deadline = time + ($timeout // 10);

    until ($self->{ready} || $self->{result} || $self->{error}) {
        my $left = $deadline - time;
        die "$self->{name}: not ready in time\n" if $left <= 0;
        $self->poll($left);
    }

    die "$self->{name}: $self->{error}\n" if $self->{error};
    return $self->{ready} || {};
}

# true once the child has sent its result (or failed)
sub done {
    my $self = shift;

    $self->poll(0);
    return $self->{result} || $self->{error} ? 1 : 0;
}

# the child's result, waiting up to $timeout seconds; dies on its error
sub result {
    my ($self, $timeout) = @_;

    my $deadline = time + ($timeout // 30);

    until ($self->{result} || $self->{error}) {
        my $left = $deadline - time;
        die "$self->{name}: no result in time\n" if $left <= 0;
        $self->poll($left);
    }

    die "$self->{name}: $self->{error}\n" if $self->{error};
    return $self->{result};
}

# lets a holding child go on (to its end)
sub release {
    my $self = shift;

    close $self->{down} if $self->{down};
    delete $self->{down};
}

# waits for the child to end (up to $timeout s), then kills it
sub finish {
    my ($self, $timeout) = @_;

    my $pid = delete $self->{pid} or return;
    $self->release;

    my $deadline = time + ($timeout // 5);
    while (time < $deadline) {
        return if waitpid($pid, WNOHANG) == $pid;
        sleep 0.02;
    }

    kill 'KILL', $pid;
    waitpid $pid, 0;
}

sub DESTROY {
    my $self = shift;

    local ($?, $@, $!);
    $self->finish(0) if $self->{pid};
}


# --- well-behaved clients ------------------------------------------------------

package WsRelay::Abuse::Probe;

use Time::HiRes qw(sleep time);

# probe_open(per_worker => 2, tag => 'probe', timeout => 5): clients on
# every worker, each registered as "<tag>-<n>"; every round, each pings,
# and they chat in a ring: on one worker, then across to the next.
sub new {
    my ($class, %o) = @_;

    my $per = $o{per_worker} // 2;
    my @by = WsRelay::Test::ws_open_per_worker('/ws', $per);
    my @clients = map { @$_ } @by;
    my $tag = $o{tag} // 'probe';

    for my $i (0 .. $#clients) {
        my $c = $clients[$i];
        $c->{user} = "$tag-$i";
        my $r = $c->call({ type => 'register', userId => $c->{user} });
        die "probe: register $c->{user}: " . $JSON->encode($r) . "\n"
            unless ($r->{status} // '') eq 'success';
    }

    my $self = bless {
        clients => \@clients,
        pairs   => [ map { [ $clients[$_], $clients[($_ + 1) % @clients] ] }
                     0 .. $#clients ],
        timeout => $o{timeout} // 5,
        seq     => 0,
    }, $class;

    $self->warm_up;

    return $self;
}

sub users { map { $_->{user} } @{ $_[0]{clients} } }
sub clients { @{ $_[0]{clients} } }

# waits (3 s at most) until every chat of the ring is delivered: a
# register is answered before the other workers route the user
sub warm_up {
    my $self = shift;

    for my $pair (@{ $self->{pairs} }) {
        my ($a, $b) = @$pair;
        my $deadline = time + 3;

        while (1) {
            my $r = $a->call({ type => 'chat', targetUserId => $b->{user},
                               text => 'warm-up' });
            if ($r->{delivered}) {
                $b->recv_json;
                last;
            }
            die "probe: $b->{user} not routed from $a->{user} in 3 s\n"
                if time > $deadline;
            sleep 0.05;
        }
    }
}

sub expect {
    my ($c, $what, $ok, $timeout) = @_;

    my $m = $c->recv_json($timeout);
    die "probe $c->{user}: want $what, got " . $JSON->encode($m) . "\n"
        unless $ok->($m);
    return $m;
}

# one round; returns the round trips' durations (seconds)
sub round {
    my $self = shift;

    my $t = $self->{timeout};
    my @lat;

    for my $c (@{ $self->{clients} }) {
        my $t0 = time;
        $c->send_json({ type => 'ping' });
        expect($c, 'pong', sub { $_[0]{type} eq 'pong' }, $t);
        push @lat, time - $t0;
    }

    for my $pair (@{ $self->{pairs} }) {
        my ($a, $b) = @$pair;
        my $text = 'probe ' . ++$self->{seq};
        my $t0 = time;

        $a->send_json({ type => 'chat', targetUserId => $b->{user},
                        text => $text });
        expect($b, "chat \"$text\" from $a->{user}",
               sub { $_[0]{type} eq 'chat' && $_[0]{text} eq $text
                     && $_[0]{sender} eq $a->{user} }, $t);
        push @lat, time - $t0;
        expect($a, 'chat_delivered true',
               sub { $_[0]{type} eq 'chat_delivered' && $_[0]{delivered}
                     && $_[0]{targetUserId} eq $b->{user} }, $t);
        push @lat, time - $t0;
    }

    return @lat;
}

# during($abuse, min => s, max => s, interval => s): rounds until the
# abuse (one child, or an array ref of them) is done and at least min
# seconds passed, or max seconds; returns {rounds, trips, max, p50, p99,
# secs, errors => [...]}
sub during {
    my ($self, $abuse, %o) = @_;

    my @abuse = ref $abuse eq 'ARRAY' ? @$abuse : $abuse ? ($abuse) : ();

    my $min = $o{min} // 0;
    my $max = $o{max} // 30;
    my $interval = $o{interval} // 0.01;
    my $start = time;
    my (@lat, @errors);
    my $rounds = 0;

    while (1) {
        my $done = !grep { !$_->done } @abuse;
        my $secs = time - $start;
        last if ($done && $secs >= $min) || $secs >= $max;

        my @l = eval { $self->round };
        if ($@) {
            push @errors, $@;
            last;
        }

        push @lat, @l;
        $rounds++;
        sleep $interval if $interval;
    }

    @lat = sort { $a <=> $b } @lat;

    return {
        rounds => $rounds,
        trips  => scalar @lat,
        max    => @lat ? $lat[-1] : 0,
        p50    => @lat ? $lat[int($#lat * 0.5)] : 0,
        p99    => @lat ? $lat[int($#lat * 0.99)] : 0,
        secs   => time - $start,
        errors => \@errors,
    };
}

# ok_responsive($stats, bound => 2, rounds => 5, what => 'slowloris')
sub ok_responsive {
    my ($self, $s, %o) = @_;

    my $bound = $o{bound} // 2;
    my $min = $o{rounds} // 5;
    my $name = WsRelay::Abuse::block_name() . ' - during '
               . ($o{what} // 'the abuse');

    Test::More::ok(!@{ $s->{errors} }, "$name: no probe failed")
        or Test::More::diag(join '', @{ $s->{errors} });
    Test::More::ok($s->{rounds} >= $min,
                   "$name: $s->{rounds} probe rounds (>= $min) in "
                   . sprintf('%.1f s', $s->{secs}));
    Test::More::ok($s->{trips} && $s->{max} < $bound,
                   sprintf('%s: %d round trips, slowest %.3f s < %g s'
                           . ' (p50 %.4f s, p99 %.4f s)', $name,
                           $s->{trips}, $s->{max}, $bound, $s->{p50},
                           $s->{p99}));
}

sub close {
    my $self = shift;

    $_->close for @{ $self->{clients} };
}


package WsRelay::Abuse;

sub probe_open { WsRelay::Abuse::Probe->new(@_) }


sub import {
    my ($pkg, @symbols) = @_;
    my $caller = caller;

    Exporter::export($pkg, $caller, @symbols);
    Exporter::export($pkg, 'main', @symbols) if $caller ne 'main';
    Exporter::export($pkg, 'WsRelay::Test::Session', @symbols);
}

1;
