package WsRelay::Test;

# WebSocket tools for the Test::Nginx suites:
#   - client frames (masked by default, every header bit under control, so
#     invalid frames can be built too) and upgrade requests, for
#     "--- raw_request eval";
#   - ws_frames(): decodes what the server sent after its 101 into one
#     readable line per message, for "--- response_body_filters eval";
#   - live sessions with several clients: a block's "--- ws_session" section
#     is Perl code run while nginx is up (see run_ws_session below);
#   - ws_defaults(): the usual config and raw-request sections of a file;
#   - clients on every worker (ws_open_per_worker), and another nginx
#     started by the test itself (nginx_instance), for the cluster tests.
#
#   use Test::Nginx::Socket 'no_plan';     # first: this module hooks into it
#   use WsRelay::Test;
#
# "eval" sections run in package Test::Base::Filter: call these functions
# as ::ws_text(...), i.e. from main, where "use WsRelay::Test" put them.

use strict;
use warnings;

use B ();
use Digest::SHA qw(sha1_base64);
use Encode ();
use Exporter ();
use IO::Select ();
use IO::Socket::INET ();
use JSON::PP ();
use Time::HiRes qw(sleep time);
use Test::More ();

our @EXPORT = qw(
    ws_frame ws_text ws_binary ws_cont ws_ping ws_pong ws_close ws_json
    ws_handshake ws_request ws_accept ws_frames ws_connect ws_open
    ws_defaults welcome_line pong_line echo_line error_line
    json_is NOW ID PID TRUE FALSE NUMBER STRING pid_in
    nginx_pid nginx_worker_pids nginx_workers_up ws_open_per_worker
    nginx_instance nginx_config_test wait_for http_get_json
);

use constant GUID => '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
use constant SAMPLE_KEY => 'dGhlIHNhbXBsZSBub25jZQ==';

my %OPCODE = (cont => 0, text => 1, binary => 2, close => 8, ping => 9,
              pong => 10);
my %OPNAME = reverse %OPCODE;

my $JSON = JSON::PP->new->utf8->canonical->allow_nonref;

# a session's failures name the block they belong to
our $BlockName = '';

# Adopt daemonized nginx (PR_SET_CHILD_SUBREAPER): its exited processes
# are then reaped by the test instead of lingering as zombies, under any
# Test::Nginx.
eval {
    local $SIG{__WARN__} = sub {};
    require 'syscall.ph';
    syscall(SYS_prctl(), 36, 1, 0, 0, 0);
};


# --- client frames ---------------------------------------------------------

# ws_frame(opcode => 'text'|number, payload => bytes, fin => 1, rsv => 0..7,
#          mask => 1, mask_key => 4 bytes, len => declared payload length,
#          len_bits => 7|16|64 to force an encoding of the length)
sub ws_frame {
    my (%f) = @_;

    my $op = $f{opcode} // 'text';
    $op = $OPCODE{$op} // die "unknown opcode $op\n" if $op !~ /^\d+$/;

    my $payload = $f{payload} // '';
    my $fin = $f{fin} // 1;
    my $mask = $f{mask} // 1;
    my $len = $f{len} // length $payload;
    my $bits = $f{len_bits}
               // ($len < 126 ? 7 : $len < 65536 ? 16 : 64);

    my $frame = chr(($fin ? 0x80 : 0) | (($f{rsv} // 0) << 4) | $op);
    my $mbit = $mask ? 0x80 : 0;

    if ($bits == 7) {
        $frame .= chr($mbit | $len);

    } elsif ($bits == 16) {
        $frame .= chr($mbit | 126) . pack('n', $len);

    } else {
        $frame .= chr($mbit | 127) . pack('NN', int($len / 2**32),
                                          $len % 2**32);
    }

    return $frame . $payload unless $mask;

    my $key = $f{mask_key} // pack('N', int rand 2**32);
    my $masked = $payload ^ substr($key x (int(length($payload) / 4) + 1),
                                   0, length $payload);
    return $frame . $key . $masked;
}

sub ws_text { my $p = shift; ws_frame(opcode => 'text', payload => $p, @_) }
sub ws_binary { my $p = shift; ws_frame(opcode => 'binary', payload => $p, @_) }
sub ws_cont { my $p = shift; ws_frame(opcode => 'cont', payload => $p, @_) }
sub ws_ping { my $p = shift // ''; ws_frame(opcode => 'ping', payload => $p, @_) }
sub ws_pong { my $p = shift // ''; ws_frame(opcode => 'pong', payload => $p, @_) }

# ws_close() has no payload; ws_close(1000) a code; ws_close(1000, 'bye')
sub ws_close {
    my ($code, $reason, @opts) = @_;

    my $payload = defined $code ? pack('n', $code) . ($reason // '') : '';
    return ws_frame(opcode => 'close', payload => $payload, @opts);
}

# a text frame holding the JSON of a Perl structure (or a JSON string)
sub ws_json {
    my ($msg, @opts) = @_;

    return ws_text(ref $msg ? $JSON->encode($msg) : $msg, @opts);
}


# --- handshake -------------------------------------------------------------

sub ws_accept {
    my $key = shift;

    my $accept = sha1_base64($key . GUID);
    return $accept . '=';
}

# ws_handshake('/ws', 'Sec-WebSocket-Version' => 8, Origin => 'x', ...):
# a header given undef is left out; the key defaults to RFC 6455's sample.
sub ws_handshake {
    my ($path, @extra) = @_;

    my @headers = (
        Host                    => 'localhost',
        Upgrade                 => 'websocket',
        Connection              => 'Upgrade',
        'Sec-WebSocket-Key'     => SAMPLE_KEY,
        'Sec-WebSocket-Version' => 13,
    );

    my $method = 'GET';

    while (my ($k, $v) = splice @extra, 0, 2) {
        if ($k eq 'method') {
            $method = $v;
            next;
        }

        my ($i) = grep { lc $headers[$_ * 2] eq lc $k } 0 .. @headers / 2 - 1;

        if (defined $i) {
            $headers[$i * 2 + 1] = $v;

        } else {
            push @headers, $k, $v;
        }
    }

    my $req = "$method $path HTTP/1.1\r\n";

    while (my ($k, $v) = splice @headers, 0, 2) {
        $req .= "$k: $v\r\n" if defined $v;
    }

    return "$req\r\n";
}

# for --- raw_request eval: the upgrade, then the frames in a second packet
# (a client sends nothing before the 101 arrives)
sub ws_request {
    my ($path, @frames) = @_;

    return [ws_handshake($path), join '', @frames];
}


# --- nginx processes ------------------------------------------------------

sub server_root {
    return Test::Nginx::Util::server_root() if defined &Test::Nginx::Util::server_root;
    return $ENV{TEST_NGINX_SERVER_ROOT};
}

sub nginx_pid {
    my $file = (server_root() // '') . '/logs/nginx.pid';

    open my $in, '<', $file or return undef;
    my $pid = <$in>;
    close $in;

    return undef unless defined $pid && $pid =~ /(\d+)/;
    return $1;
}

# The workers' pids, or nginx's own pid when it runs without a master.
sub nginx_worker_pids {
    my $master = nginx_pid() or return ();
    my @workers;

    opendir my $dh, '/proc' or return ();
    for my $pid (grep { /^\d+$/ } readdir $dh) {
        open my $in, '<', "/proc/$pid/stat" or next;
        my $stat = <$in>;
        close $in;
        next unless defined $stat && $stat =~ /\) (\S) (\d+)/;
        next unless $2 == $master && $1 ne 'Z';

        open my $cmd, '<', "/proc/$pid/cmdline" or next;
        my $cmdline = <$cmd> // '';
        close $cmd;
        push @workers, $pid + 0
            if $cmdline =~ /worker process/ || $cmdline =~ m{^\S*valgrind};
    }
    closedir $dh;

    return @workers ? sort { $a <=> $b } @workers : ($master + 0);
}


# --- decoding server frames ------------------------------------------------

sub is_json_number {
    my $v = shift;

    return 0 if !defined $v || ref $v;
    my $flags = B::svref_2object(\$v)->FLAGS;
    return ($flags & (B::SVp_IOK | B::SVp_NOK)) && !($flags & B::SVp_POK);
}

sub is_now {
    my $v = shift;

    return is_json_number($v) && abs($v - time * 1000) < 300_000;
}

sub valid_utf8 {
    my $bytes = shift;

    return eval {
        Encode::decode('UTF-8', $bytes, Encode::FB_CROAK | Encode::LEAVE_SRC);
        1;
    } ? 1 : 0;
}

# Replaces the values no test can know in advance by checked placeholders:
# "<now>" for a timestamp within 5 minutes, "<pid>" for a worker's pid,
# "<idN>" for the Nth connectionId seen (and any string equal to it).
sub normalize_json {
    my ($v, $ids, $key) = @_;

    if (ref $v eq 'HASH') {
        return { map { $_ => normalize_json($v->{$_}, $ids, $_) } keys %$v };
    }

    if (ref $v eq 'ARRAY') {
        return [ map { normalize_json($_, $ids, undef) } @$v ];
    }

    return $v if ref $v || !defined $v || !defined $key;

    if ($key eq 'timestamp' && is_now($v)) {
        return '<now>';
    }

    if ($key eq 'processId' && is_json_number($v)
        && grep { $_ == $v } nginx_worker_pids())
    {
        return '<pid>';
    }

    if ($key eq 'connectionId' && !is_json_number($v) && $v ne ''
        && !exists $ids->{$v})
    {
        $ids->{$v} = '<id' . (keys(%$ids) + 1) . '>';
    }

    if (!is_json_number($v) && exists $ids->{$v}) {
        return $ids->{$v};
    }

    return $v;
}

sub show_bytes {
    my $s = shift;

    return $s if $s !~ /[^\x20-\x7e]/;
    return 'hex ' . unpack('H*', $s);
}

sub describe_text {
    my ($payload, $ids) = @_;

    my $msg = eval { $JSON->decode($payload) };

    return show_bytes($payload) unless ref $msg;
    return $JSON->encode(normalize_json($msg, $ids, undef));
}

sub describe_close {
    my $payload = shift;

    return 'close' if $payload eq '';
    return 'close: invalid 1-byte payload' if length $payload == 1;

    my $line = 'close: ' . unpack('n', $payload);
    my $reason = substr $payload, 2;

    $line .= ' (reason is not UTF-8)' unless valid_utf8($reason);
    $line .= ' (reason over 123 bytes)' if length $reason > 123;
    return $line;
}

# Parses one frame at the start of $buf; returns (frame, bytes used), or
# (undef, 0) when incomplete, or ({error => ...}, 0) for a bad frame.
sub parse_frame {
    my ($buf, $masked_ok) = @_;

    return (undef, 0) if length $buf < 2;

    my ($b0, $b1) = unpack 'CC', $buf;
    my %f = (fin => $b0 >> 7, rsv => ($b0 >> 4) & 7, opcode => $b0 & 15,
             masked => $b1 >> 7);
    my $len = $b1 & 127;
    my $pos = 2;

    if ($len == 126) {
        return (undef, 0) if length $buf < 4;
        $len = unpack 'n', substr($buf, 2, 2);
        return ({error => 'non-minimal 16-bit length'}, 0) if $len < 126;
        $pos = 4;

    } elsif ($len == 127) {
        return (undef, 0) if length $buf < 10;
        my ($hi, $lo) = unpack 'NN', substr($buf, 2, 8);
        return ({error => '64-bit length with the top bit set'}, 0)
            if $hi & 0x80000000;
        $len = $hi * 2**32 + $lo;
        return ({error => 'non-minimal 64-bit length'}, 0) if $len < 65536;
        $pos = 10;
    }

    my $key;
    if ($f{masked}) {
        return ({error => 'masked server frame'}, 0) unless $masked_ok;
        return (undef, 0) if length $buf < $pos + 4;
        $key = substr $buf, $pos, 4;
        $pos += 4;
    }

    return (undef, 0) if length $buf < $pos + $len;

    $f{payload} = substr $buf, $pos, $len;
    if (defined $key) {
        $f{payload} ^= substr($key x (int($len / 4) + 1), 0, $len);
    }

    return (\%f, $pos + $len);
}

# Frame-level rules a server's frames must keep (RFC 6455 section 5).
sub frame_error {
    my ($f, $in_message) = @_;

    return 'RSV bits set without an extension' if $f->{rsv};
    return "reserved opcode $f->{opcode}" unless exists $OPNAME{$f->{opcode}};

    if ($f->{opcode} >= 8) {
        return 'fragmented control frame' unless $f->{fin};
        return 'control frame over 125 bytes' if length $f->{payload} > 125;
        return undef;
    }

    return 'continuation without a start'
        if $f->{opcode} == 0 && !$in_message;
    return 'new message inside a fragmented one'
        if $f->{opcode} != 0 && $in_message;
    return undef;
}

# The bytes a server sent after its 101, one line per message:
#   text: {"connectionId":"<id1>",...}   (JSON with sorted keys)
#   binary: ...   ping: payload   pong   close: 1002
# and "bad frame: ..." or "incomplete: N bytes" when the stream is wrong.
sub ws_frames {
    my $buf = shift // '';

    my (@lines, %ids, $message, $closed);

    while (length $buf) {
        if ($closed) {
            push @lines, 'data after close: ' . length($buf) . ' bytes';
            last;
        }

        my ($f, $used) = parse_frame($buf, 0);

        if (!defined $f) {
            push @lines, 'incomplete: ' . length($buf) . ' bytes';
            last;
        }

        if (my $err = $f->{error} // frame_error($f, defined $message)) {
            push @lines, "bad frame: $err";
            last;
        }

        substr($buf, 0, $used, '');

        my $name = $OPNAME{$f->{opcode}};

        if ($name eq 'ping' || $name eq 'pong') {
            push @lines, $f->{payload} eq '' ? $name
                         : "$name: " . show_bytes($f->{payload});
            next;
        }

        if ($name eq 'close') {
            push @lines, describe_close($f->{payload});
            $closed = 1;
            next;
        }

        if ($name ne 'cont') {
            $message = { type => $name, data => '' };
        }

        $message->{data} .= $f->{payload};
        next unless $f->{fin};

        if ($message->{type} eq 'text') {
            push @lines, valid_utf8($message->{data})
                         ? 'text: ' . describe_text($message->{data}, \%ids)
                         : 'bad frame: invalid UTF-8 in text';

        } else {
            push @lines, 'binary: ' . show_bytes($message->{data});
        }

        undef $message;
    }

    return join '', map { "$_\n" } @lines;
}


# Lines of ws_frames() output that many tests expect.
sub welcome_line {
    return 'text: {"connectionId":"<id1>","message":"connected",'
           . '"processId":"<pid>","timestamp":"<now>","type":"welcome"}' . "\n";
}

sub pong_line { qq|text: {"timestamp":"<now>","type":"pong"}\n| }

# the echo of {"type":"chat","text":$text} sent by the first, unregistered
# connection
sub echo_line {
    my $text = shift;

    return qq|text: {"sender":"<id1>","text":"$text",|
           . qq|"timestamp":"<now>","type":"chat"}\n|;
}

sub error_line {
    my $message = shift;

    return qq|text: {"message":"$message","type":"error"}\n|;
}


# --- JSON expectations -------------------------------------------------------

# Matchers for json_is(): the values no test can know in advance.
sub NOW () { bless { what => 'a timestamp (ms) within 5 minutes of now',
                     ok => \&is_now }, 'WsRelay::Test::Matcher' }
sub ID () { bless { what => 'a non-empty string',
                    ok => sub { defined $_[0] && !ref $_[0]
                                && !is_json_number($_[0]) && $_[0] ne '' } },
                  'WsRelay::Test::Matcher' }
sub PID () { bless { what => "an nginx worker's pid (a number)",
                     ok => sub { my $v = shift; is_json_number($v)
                                 && grep { $_ == $v } nginx_worker_pids() } },
                   'WsRelay::Test::Matcher' }
sub NUMBER () { bless { what => 'a number', ok => \&is_json_number },
                      'WsRelay::Test::Matcher' }
sub STRING () { bless { what => 'a string',
                        ok => sub { defined $_[0] && !ref $_[0]
                                    && !is_json_number($_[0]) } },
                      'WsRelay::Test::Matcher' }
# pid_in(@pids): one of these pids (the workers of another nginx)
sub pid_in {
    my @pids = @_;

    return bless { what => "one of the pids @pids",
                   ok => sub { my $v = shift; is_json_number($v)
                               && grep { $_ == $v } @pids } },
                 'WsRelay::Test::Matcher';
}
sub TRUE () { JSON::PP::true }
sub FALSE () { JSON::PP::false }

sub show_value {
    my $v = shift;

    return 'undef' unless defined $v;
    return $v->{what} if ref $v eq 'WsRelay::Test::Matcher';
    return $JSON->encode($v);
}

# The first difference between $got and $want, or undef when they match.
# Keys must be the same; JSON numbers, strings and booleans never match
# each other; a Perl number in $want asks for a JSON number.
sub json_diff {
    my ($got, $want, $path) = @_;

    if (ref $want eq 'WsRelay::Test::Matcher') {
        return $want->{ok}->($got) ? undef
               : "$path: got " . show_value($got) . ", want $want->{what}";
    }

    if (ref $want eq 'HASH') {
        return "$path: got " . show_value($got) . ', want an object'
            unless ref $got eq 'HASH';

        for my $k (sort keys %$want) {
            return "$path: missing key \"$k\"" unless exists $got->{$k};
            my $d = json_diff($got->{$k}, $want->{$k}, "$path.$k");
            return $d if defined $d;
        }

        my @extra = grep { !exists $want->{$_} } sort keys %$got;
        return "$path: unexpected key(s) @extra" if @extra;
        return undef;
    }

    if (ref $want eq 'ARRAY') {
        return "$path: got " . show_value($got) . ', want an array'
            unless ref $got eq 'ARRAY';
        return "$path: got " . @$got . ' elements, want ' . @$want
            unless @$got == @$want;

        for my $i (0 .. $#$want) {
            my $d = json_diff($got->[$i], $want->[$i], "$path\[$i]");
            return $d if defined $d;
        }
        return undef;
    }

    if (JSON::PP::is_bool($want)) {
        return undef if JSON::PP::is_bool($got) && !$got == !$want;
        return "$path: got " . show_value($got) . ', want '
               . show_value($want);
    }

    if (!defined $want) {
        return defined $got ? "$path: got " . show_value($got)
                              . ', want null' : undef;
    }

    my $same = defined $got && !ref $got
               && (is_json_number($want) ? is_json_number($got) && $got == $want
                                         : !is_json_number($got)
                                           && $got eq $want);

    return $same ? undef
           : "$path: got " . show_value($got) . ', want ' . show_value($want);
}

# json_is($message, {type => 'pong', timestamp => NOW}, 'ping answered')
sub json_is {
    my ($got, $want, $desc) = @_;

    my $diff = json_diff($got, $want, '$');
    my $ok = Test::More::ok(!defined $diff, "$BlockName - $desc");

    Test::More::diag("$diff\n  got: " . show_value($got)) if defined $diff;
    return $ok;
}


# --- live sessions ---------------------------------------------------------

sub ws_connect { WsRelay::Test::Client->new(@_) }

# Connects and checks the welcome message (plus the fields of the option
# welcome => {...}); $client->{id} and {pid} then hold its connectionId
# and processId.
sub ws_open {
    my ($path, %opts) = @_;

    my $extra = delete $opts{welcome} || {};
    my $c = ws_connect($path, %opts);
    my $m = $c->recv_json;

    json_is($m, { type => 'welcome', message => 'connected',
                  connectionId => ID, processId => PID, timestamp => NOW,
                  %$extra },
            "welcome on $path");

    $c->{id} = $m->{connectionId};
    $c->{pid} = $m->{processId};
    return $c;
}

# ws_open_per_worker('/ws', 2): opens connections until each worker of
# nginx holds 2 of them (the extra ones are closed); returns an array ref
# of clients per worker, in the order of the workers' pids. Options:
# pids => [...] (the workers of another nginx, with port => ...), and
# those of ws_open.
sub ws_open_per_worker {
    my ($path, $count, %opts) = @_;

    my @pids = sort { $a <=> $b } @{ delete $opts{pids}
                                     || [nginx_workers_up()] };
    my %by = map { $_ => [] } @pids;
    my @extra;
    my $tries = 100 * $count * @pids;

    while (grep { @{ $by{$_} } < $count } @pids) {
        die "ws_open_per_worker: $tries connections did not reach every"
            . " worker of @pids\n" if $tries-- == 0;

        my $c = ws_open($path, %opts);
        my $mine = $by{$c->{pid}};

        if ($mine && @$mine < $count) {
            push @$mine, $c;

        } else {
            push @extra, $c;
        }
    }

    $_->close for @extra;

    return map { $by{$_} } @pids;
}

# The workers' pids once all of them run (workers() of them, within 5 s):
# right after nginx starts, or after a worker died, some may be missing.
sub nginx_workers_up {
    my $want = defined &Test::Nginx::Util::workers
               ? Test::Nginx::Util::workers() : 1;

    wait_for(sub { my @pids = nginx_worker_pids(); @pids >= $want }, 5);
    return nginx_worker_pids();
}

# wait_for(sub { ... }, 3): polls the condition until it is true or the
# seconds are over; returns its last value.
sub wait_for {
    my ($cond, $secs) = @_;

    my $deadline = time + ($secs // 3);

    while (1) {
        my $v = $cond->();
        return $v if $v || time >= $deadline;
        sleep 0.02;
    }
}

# http_get_json('/api/health', port => ...): a plain GET, in 3 s at most;
# returns the status and the body decoded as JSON (undef if it is not).
sub http_get_json {
    my ($path, %opts) = @_;

    my $port = $opts{port}
               // (defined &Test::Nginx::Util::server_port
                   ? Test::Nginx::Util::server_port()
                   : $ENV{TEST_NGINX_SERVER_PORT} // 1984);

    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                     PeerPort => $port, Proto => 'tcp',
                                     Timeout => 3)
        or die "connect to 127.0.0.1:$port: $!\n";

    print $sock "GET $path HTTP/1.0\r\nHost: localhost\r\n\r\n";

    my $resp = '';
    my $sel = IO::Select->new($sock);
    my $deadline = time + 3;

    while (time < $deadline && $sel->can_read($deadline - time)) {
        sysread($sock, $resp, 65536, length $resp) or last;
    }
    close $sock;

    my ($status) = $resp =~ m{^HTTP/1\.[01] (\d{3})}
        or die "GET $path: no HTTP response\n";
    my ($body) = $resp =~ /\r\n\r\n(.*)\z/s;

    return ($status, eval { $JSON->decode($body // '') });
}

# Another nginx on this host, for tests with several nginx instances:
# see WsRelay::Test::Nginx below.
sub nginx_instance { WsRelay::Test::Nginx->new(@_) }

# nginx_config_test(config => '...', http_config => '...'): nginx -t on
# what nginx_instance() would run; returns nginx's exit status and output.
sub nginx_config_test { WsRelay::Test::Nginx->config_test(@_) }

# Runs a block's "--- ws_session" Perl code while nginx is up. The code
# sees Test::More's functions, this module's exports and Time::HiRes's
# sleep and time; it fails the block
# (instead of killing the run) when it dies or runs over 60 seconds.
sub run_ws_session {
    my ($block, $body, $req_idx, $repeated_req_idx, $dry_run) = @_;

    my $code = $block->ws_session;
    return unless defined $code && $req_idx == 0;

    local $BlockName = $block->name;

  SKIP: {
        Test::More::skip("$BlockName - ws_session skipped due to $dry_run", 1)
            if $dry_run;

        # and WsRelay::Redis's functions, when the test file uses them
        Exporter::export('WsRelay::Redis', 'WsRelay::Test::Session')
            if defined &WsRelay::Redis::redis_cmd
               && !defined &WsRelay::Test::Session::redis_cmd;

        my $sub = eval "package WsRelay::Test::Session;\n"
                       . "#line 1 \"ws_session\"\nsub {\n$code\n}";

        if (!$sub) {
            Test::More::fail("$BlockName - ws_session compiles: $@");
            last SKIP;
        }

        my $ok = eval {
            local $SIG{ALRM} = sub { die "ws_session took over 60 s\n" };
            alarm 60;
            $sub->();
            alarm 0;
            1;
        };
        alarm 0;

        Test::More::fail("$BlockName - ws_session died: $@") unless $ok;
    }
}

# A block with a ws_session needs no request of its own: it gets a plain
# GET of the test server's root location.
sub preprocess_block {
    my $block = shift;

    # Test::Base's eval filter turns a Perl error into the section's value
    for my $section (sort keys %{ $block->{_section_map}[0] || {} }) {
        next unless $block->{_section_map}[0]{$section}{filters} =~ /\beval\b/;
        my $value = $block->$section;
        if (defined $value && !ref $value
            && $value =~ /\bat \(eval \d+\) line \d+/)
        {
            Test::More::fail($block->name . " - --- $section eval: $value");
        }
    }

    return unless defined $block->ws_session;
    return if defined $block->request || defined $block->raw_request;

    $block->set_value('request', 'GET /');
}

# Defaults for the blocks of a .t file, set before run_tests():
#   config      => text   for blocks without --- config (default: a ws_relay
#                          location /ws)
#   main_config => text   for blocks without --- main_config
#   http_config => text   for blocks without --- http_config
# and for blocks with a --- raw_request: 0.1 s between its packets (the
# upgrade goes alone, as a client waits for the 101), --- error_code 101,
# and the server's frames decoded by ws_frames().
sub ws_defaults {
    my (%defaults) = @_;

    $defaults{config} //= "    location = /ws {\n        ws_relay;\n    }\n";

    Test::Nginx::Socket::add_block_preprocessor(sub {
        my $block = shift;

        for my $section (qw(config main_config http_config)) {
            $block->set_value($section, $defaults{$section})
                if defined $defaults{$section} && !defined $block->$section;
        }

        return unless defined $block->raw_request;

        $block->set_value('raw_request_middle_delay', 0.1)
            unless defined $block->raw_request_middle_delay;
        $block->set_value('error_code', 101)
            unless defined $block->error_code;
        $block->set_value('response_body_filters', \&ws_frames)
            unless defined $block->response_body_filters;
    });
}

sub setup_hooks {
    Test::Nginx::Socket::add_response_body_check(\&run_ws_session);
    Test::Nginx::Socket::add_block_preprocessor(\&preprocess_block);
}

my $hooked;

sub import {
    if (!$hooked && defined &Test::Nginx::Socket::add_response_body_check) {
        setup_hooks();
        $hooked = 1;
    }

    my ($pkg, @symbols) = @_;
    my $caller = caller;

    # also into main, for "eval" sections (package Test::Base::Filter)
    Exporter::export($pkg, $caller, @symbols);
    Exporter::export($pkg, 'main', @symbols) if $caller ne 'main';
}


package WsRelay::Test::Session;

Test::More->import();
Time::HiRes->import(qw(sleep time));
Exporter::export('WsRelay::Test', 'WsRelay::Test::Session');


# --- the interactive client ----------------------------------------------

package WsRelay::Test::Client;

use strict;
use warnings;

use Errno qw(EAGAIN EWOULDBLOCK EINTR);
use MIME::Base64 qw(encode_base64);
use Socket qw(SOL_SOCKET SO_RCVBUF IPPROTO_TCP TCP_NODELAY);
use Time::HiRes qw(sleep time);

# WsRelay::Test::Client->new('/ws', timeout => 3, headers => [k => v],
#     rcvbuf => bytes, auto_pong => 1, expect_status => 101, tls => 0,
#     pipeline => frames)
sub new {
    my ($class, $path, %opts) = @_;

    my $self = bless {
        path      => $path // '/',
        timeout   => $opts{timeout} // 3,
        auto_pong => $opts{auto_pong} // 1,
        buf       => '',
        pings     => [],
        pongs     => [],
        log       => [],
        message   => undef,
    }, $class;

    my $port = $opts{port}
               // (defined &Test::Nginx::Util::server_port
                   ? Test::Nginx::Util::server_port()
                   : $ENV{TEST_NGINX_SERVER_PORT} // 1984);

    my $sock = IO::Socket::INET->new(Proto => 'tcp');
    die "socket: $!\n" unless $sock;
    if ($opts{rcvbuf}) {
        setsockopt($sock, SOL_SOCKET, SO_RCVBUF, pack('i', $opts{rcvbuf}))
            or die "setsockopt SO_RCVBUF: $!\n";
    }

    my $addr = Socket::pack_sockaddr_in($port, Socket::inet_aton('127.0.0.1'));
    connect($sock, $addr) or die "connect to 127.0.0.1:$port: $!\n";
    setsockopt($sock, IPPROTO_TCP, TCP_NODELAY, 1);

    if ($opts{tls}) {
        # wss: any certificate (the tests make their own)
        require IO::Socket::SSL;
        IO::Socket::SSL->start_SSL($sock, SSL_hostname => 'localhost',
                                   SSL_verify_mode => 0)
            or die "TLS handshake with 127.0.0.1:$port: "
                   . IO::Socket::SSL::errstr() . "\n";
    }

    $sock->autoflush(1);
    $sock->blocking(0);
    $self->{sock} = $sock;

    my $key = $opts{key}
              // encode_base64(join('', map { chr int rand 256 } 1 .. 16), '');
    $self->{key} = $key;

    # pipeline => $frames: sent in the same write as the handshake
    $self->send_raw(WsRelay::Test::ws_handshake($self->{path},
                                                 'Sec-WebSocket-Key' => $key,
                                                 @{ $opts{headers} || [] })
                    . ($opts{pipeline} // ''));

    $self->read_response_head;

    my $want = $opts{expect_status} // 101;
    if ($self->{status} != $want) {
        die "handshake to $self->{path}: status $self->{status},"
            . " want $want\n";
    }

    if ($self->{status} == 101) {
        my $accept = $self->header('Sec-WebSocket-Accept') // '';
        die "bad Sec-WebSocket-Accept \"$accept\"\n"
            unless $accept eq WsRelay::Test::ws_accept($key);
    }

    return $self;
}

sub status { $_[0]{status} }

sub header {
    my ($self, $name) = @_;

    my @v = map { $_->[1] } grep { lc $_->[0] eq lc $name }
            @{ $self->{headers} };
    return @v ? join(', ', @v) : undef;
}

sub fill {
    my ($self, $timeout) = @_;

    return 0 if $self->{eof};

    my $sel = IO::Select->new($self->{sock});
    my $deadline = time + $timeout;

    while (1) {
        my $left = $deadline - time;
        return 0 if $left <= 0;

        # TLS may hold decrypted bytes that select() does not see
        my $pending = $self->{sock}->can('pending')
                      && $self->{sock}->pending;

        next unless $pending || $sel->can_read($left);

        my $n = sysread($self->{sock}, my $chunk, 65536);

        if (!defined $n) {
            next if $! == EAGAIN || $! == EWOULDBLOCK || $! == EINTR;
            $self->{eof} = "read error: $!";
            return 0;
        }

        if ($n == 0) {
            $self->{eof} = 'eof';
            return 0;
        }

        $self->{buf} .= $chunk;
        return $n;
    }
}

sub read_response_head {
    my $self = shift;

    while ($self->{buf} !~ /\r\n\r\n/) {
        $self->fill($self->{timeout})
            or die "no handshake response from $self->{path}"
                   . " ($self->{buf})\n";
    }

    $self->{buf} =~ s/\A(.*?)\r\n\r\n//s;
    my @lines = split /\r\n/, $1;
    my $status = shift @lines;

    die "bad status line \"$status\"\n"
        unless $status =~ m{^HTTP/1\.[01] (\d{3})};
    $self->{status} = $1;
    $self->{headers} = [ map { /^([^:]+):\s*(.*)$/ ? [$1, $2] : () } @lines ];

    # a refused upgrade carries a body: keep it readable as {body}
    if ($self->{status} != 101) {
        my $len = $self->header('Content-Length');
        if (defined $len) {
            while (length $self->{buf} < $len) {
                $self->fill($self->{timeout}) or last;
            }
        }
        $self->{body} = $self->{buf};
    }
}

sub body { $_[0]{body} }

sub send_raw {
    my ($self, $bytes) = @_;

    local $SIG{PIPE} = 'IGNORE';

    my $sel = IO::Select->new($self->{sock});
    my $deadline = time + $self->{timeout};

    while (length $bytes) {
        my $n = syswrite($self->{sock}, $bytes);

        if (!defined $n) {
            die "write failed: $!\n"
                unless $! == EAGAIN || $! == EWOULDBLOCK || $! == EINTR;
            die "write timed out\n" if time > $deadline;
            $sel->can_write($deadline - time);
            next;
        }

        substr($bytes, 0, $n, '');
    }

    return 1;
}

# Like send_raw, but gives up (returns the bytes not written) when the
# peer stops reading for $timeout seconds: for flooding tests.
sub try_send_raw {
    my ($self, $bytes, $timeout) = @_;

    local $SIG{PIPE} = 'IGNORE';

    my $sel = IO::Select->new($self->{sock});

    while (length $bytes) {
        my $n = syswrite($self->{sock}, $bytes);

        if (!defined $n) {
            return $bytes
                unless $! == EAGAIN || $! == EWOULDBLOCK || $! == EINTR;
            return $bytes unless $sel->can_write($timeout);
            next;
        }

        substr($bytes, 0, $n, '');
    }

    return '';
}

sub send_frame { my $self = shift; $self->send_raw(WsRelay::Test::ws_frame(@_)) }
sub send_text { my $self = shift; $self->send_raw(WsRelay::Test::ws_text(@_)) }
sub send_binary { my $self = shift; $self->send_raw(WsRelay::Test::ws_binary(@_)) }
sub send_ping { my $self = shift; $self->send_raw(WsRelay::Test::ws_ping(@_)) }
sub send_pong { my $self = shift; $self->send_raw(WsRelay::Test::ws_pong(@_)) }
sub send_close { my $self = shift; $self->send_raw(WsRelay::Test::ws_close(@_)) }
sub send_json { my $self = shift; $self->send_raw(WsRelay::Test::ws_json(@_)) }

# The next frame: {name, opcode, fin, rsv, payload}, {name => 'eof'} when
# the server closed the connection, undef when nothing came in time.
sub next_frame {
    my ($self, $timeout) = @_;

    $timeout //= $self->{timeout};
    my $deadline = time + $timeout;

    while (1) {
        my ($f, $used) = WsRelay::Test::parse_frame($self->{buf}, 0);

        if (defined $f) {
            die "bad frame from server: $f->{error}\n" if $f->{error};
            substr($self->{buf}, 0, $used, '');
            $f->{name} = $OPNAME{$f->{opcode}} // "opcode $f->{opcode}";
            push @{ $self->{log} }, $f->{name};
            return $f;
        }

        if ($self->{eof}) {
            return { name => 'eof', why => $self->{eof},
                     left => length $self->{buf} };
        }

        my $left = $deadline - time;
        return undef if $left <= 0;
        $self->fill($left);
    }
}

# The next message, answering pings on the way (unless auto_pong => 0):
# {type => 'text'|'binary', data}, {type => 'close', code, reason},
# {type => 'eof'}, or undef when nothing came in time.
sub next_message {
    my ($self, $timeout) = @_;

    $timeout //= $self->{timeout};
    my $deadline = time + $timeout;

    while (1) {
        my $f = $self->next_frame(WsRelay::Test::max(0, $deadline - time))
            or return undef;

        return { type => 'eof', why => $f->{why} } if $f->{name} eq 'eof';

        my $err = WsRelay::Test::frame_error($f, defined $self->{message});
        die "bad frame from server: $err\n" if $err;

        if ($f->{name} eq 'ping') {
            push @{ $self->{pings} }, time;
            $self->send_pong($f->{payload}) if $self->{auto_pong};
            next;
        }

        if ($f->{name} eq 'pong') {
            push @{ $self->{pongs} }, $f->{payload};
            next;
        }

        if ($f->{name} eq 'close') {
            my $p = $f->{payload};
            return { type => 'close',
                     code => length $p >= 2 ? unpack('n', $p) : undef,
                     reason => length $p > 2 ? substr($p, 2) : '' };
        }

        if ($f->{name} ne 'cont') {
            $self->{message} = { type => $f->{name}, data => '' };
        }

        $self->{message}{data} .= $f->{payload};
        next unless $f->{fin};

        my $m = delete $self->{message};
        die "invalid UTF-8 in a text message from the server\n"
            if $m->{type} eq 'text' && !WsRelay::Test::valid_utf8($m->{data});
        return $m;
    }
}

sub describe {
    my $m = shift;

    return 'nothing' unless defined $m;
    return "close $m->{code}" if $m->{type} eq 'close';
    return $m->{type} eq 'eof' ? 'end of connection' : "$m->{type}: $m->{data}";
}

# The node id of the worker holding this connection: its connectionId
# is "<node id>-<n>".
sub node {
    my $self = shift;

    return $self->{id} =~ /^(.+)-\d+$/ ? $1 : undef;
}

# Every JSON message that arrives until none came for $quiet seconds.
sub recv_all {
    my ($self, $quiet) = @_;

    my @got;

    while (1) {
        my $m = $self->next_message($quiet // 0.3) or last;
        die "expected JSON text messages, got " . describe($m) . "\n"
            unless $m->{type} =~ /^(?:text|binary)$/;
        push @got, $JSON->decode($m->{data});
    }

    return @got;
}

# The next message as decoded JSON; dies when it is something else.
sub recv_json {
    my ($self, $timeout) = @_;

    my $m = $self->next_message($timeout);

    die "expected a JSON text message, got " . describe($m) . "\n"
        unless $m && $m->{type} =~ /^(?:text|binary)$/;

    my $msg = eval { $JSON->decode($m->{data}) };
    die "not JSON: $m->{data}\n" unless defined $msg;
    return $msg;
}

# Sends a message and returns the decoded JSON reply.
sub call {
    my ($self, $msg, $timeout) = @_;

    $self->send_json($msg);
    return $self->recv_json($timeout);
}

# Fails unless the next message is a close frame with $code, then answers
# it and expects the server to end the TCP connection.
sub expect_close {
    my ($self, $code, $desc, $timeout) = @_;

    my $m = $self->next_message($timeout);
    my $name = "$WsRelay::Test::BlockName - $desc";

    if (!$m || $m->{type} ne 'close') {
        return Test::More::fail("$name: got " . describe($m)
                                . ", want close $code");
    }

    my $ok = Test::More::is($m->{code}, $code, $name);

    if ($ok) {
        $self->send_close($m->{code}) unless $self->{eof};
        $ok = $self->expect_eof("$desc: then the server closes");
    }

    return $ok;
}

# Fails unless the server ends the connection within $timeout seconds,
# with nothing but control frames before.
sub expect_eof {
    my ($self, $desc, $timeout) = @_;

    $timeout //= $self->{timeout};
    my $deadline = time + $timeout;

    while (1) {
        my $f = $self->next_frame(WsRelay::Test::max(0, $deadline - time));

        if (!$f) {
            return Test::More::fail("$WsRelay::Test::BlockName - $desc:"
                                    . " still open after $timeout s");
        }

        return Test::More::pass("$WsRelay::Test::BlockName - $desc")
            if $f->{name} eq 'eof';

        if ($f->{opcode} < 8) {
            return Test::More::fail("$WsRelay::Test::BlockName - $desc:"
                                    . " got a $f->{name} frame");
        }
    }
}

# Fails when any message arrives within $secs (pings are answered).
sub expect_silence {
    my ($self, $secs, $desc) = @_;

    my $m = $self->next_message($secs);
    return Test::More::ok(!defined $m, "$WsRelay::Test::BlockName - $desc")
        || Test::More::diag("got " . describe($m));
}

# Closes cleanly: close frame, wait for the server's close and its EOF.
sub close {
    my ($self, $code) = @_;

    return if $self->{eof};

    $self->send_close($code // 1000);

    my $deadline = time + $self->{timeout};
    while (time < $deadline) {
        my $m = $self->next_message($deadline - time) or last;
        last if $m->{type} eq 'eof';
    }

    CORE::close($self->{sock});
}

sub DESTROY {
    my $self = shift;

    CORE::close($self->{sock}) if $self->{sock};
}



# --- another nginx -----------------------------------------------------------

package WsRelay::Test::Nginx;

# A second nginx run by the test itself (Test::Nginx runs one per block),
# as another host of the cluster would be:
#
#   my $n2 = nginx_instance(workers => 2, http_config => '...',
#                           config => '...', listen => 'ssl');
#   my $c = $n2->ws_open('/ws');
#   $n2->pids; $n2->error_log; $n2->stop;
#
# It has its own prefix (the test server root with a "2" appended, or
# root => ...), a free port (or port => ...), the modules the test
# server loads, and the test server's binary. It is stopped when the
# object goes away, and at exit however the test ends.

use strict;
use warnings;

use File::Path qw(make_path remove_tree);
use IO::Socket::INET ();
use POSIX qw(WNOHANG);
use Scalar::Util qw(weaken);
use Time::HiRes qw(sleep time);

my %Running;

sub new {
    my ($class, %opts) = @_;

    my $self = $class->configure(%opts);
    $self->start;

    return $self;
}

# nginx -t on the configuration new() would run: (exit status, output)
sub config_test {
    my ($class, %opts) = @_;

    my $self = $class->configure(%opts);
    my $root = $self->{root};
    my $cmd = "$self->{binary} -t -p $root/ -c $root/conf/nginx.conf"
              . " -e $root/logs/error.log 2>&1";

    # nginx -t exits leaving its init pool to the exit, a leak to
    # LeakSanitizer (make test-asan); nothing of a module runs there
    local $ENV{ASAN_OPTIONS} = "$ENV{ASAN_OPTIONS}:detect_leaks=0"
        if $ENV{ASAN_OPTIONS};
    my $out = qx{$cmd};

    return ($? >> 8, $out);
}

sub configure {
    my ($class, %opts) = @_;

    my $main = WsRelay::Test::server_root()
        // die "nginx_instance: no test server root\n";

    my $self = bless {
        root        => $opts{root} // $main . '2',
        port        => $opts{port} // free_port(),
        workers     => $opts{workers} // 2,
        http_config => $opts{http_config} // '',
        listen      => defined $opts{listen} ? " $opts{listen}" : '',
        config      => $opts{config}
                       // "    location = /ws {\n        ws_relay;\n    }\n",
        modules     => $opts{modules} // loaded_modules("$main/conf/nginx.conf"),
        binary      => $opts{binary} // test_binary(),
        owner       => $$,
    }, $class;

    $self->write_config;

    return $self;
}

sub port { $_[0]{port} }
sub root { $_[0]{root} }
sub master { $_[0]{master} }

sub test_binary {
    no warnings 'once';
    return $Test::Nginx::Util::NginxBinary // $ENV{TEST_NGINX_BINARY}
           // 'nginx';
}

# the load_module lines of a generated nginx.conf
sub loaded_modules {
    my $file = shift;

    open my $in, '<', $file or return '';
    my $conf = do { local $/; <$in> };
    close $in;

    return join "\n", $conf =~ /^\s*(load_module\s+[^;]+;)/mg;
}

sub free_port {
    for (1 .. 1000) {
        my $port = 20000 + int rand 40000;
        my $sock = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
                                         LocalPort => $port, Proto => 'tcp',
                                         Listen => 1)
            or next;
        close $sock;
        return $port;
    }

    die "nginx_instance: no free port\n";
}

sub write_config {
    my $self = shift;

    my $root = $self->{root};

    remove_tree("$root/conf", "$root/logs", glob("$root/*_temp"));
    make_path("$root/conf", "$root/logs");

    my $temp = join '', map { "    ${_}_temp_path $root/${_}_temp;\n" }
               qw(client_body proxy fastcgi uwsgi scgi);
    my $user = $> == 0 ? "user root;\n" : '';

    open my $out, '>', "$root/conf/nginx.conf"
        or die "nginx_instance: $root/conf/nginx.conf: $!\n";
    print $out <<_EOC_;
$self->{modules}
worker_processes  $self->{workers};
daemon on;
master_process on;
error_log $root/logs/error.log info;
pid       $root/logs/nginx.pid;
$user
events {
    accept_mutex off;
    worker_connections  1024;
}

http {
    access_log $root/logs/access.log;
$temp
$self->{http_config}

    server {
        listen       127.0.0.1:$self->{port}$self->{listen};
        server_name  localhost;

$self->{config}
    }
}
_EOC_
    close $out;
}

sub start {
    my $self = shift;

    my $root = $self->{root};

    system($self->{binary}, '-p', "$root/", '-c', "$root/conf/nginx.conf",
           '-e', "$root/logs/error.log") == 0
        or die "nginx_instance: $self->{binary} could not start (status $?):"
               . "\n" . $self->error_log;

    my $deadline = time + 5;
    until ($self->{master} = $self->read_pid) {
        die "nginx_instance: no pid file\n" if time > $deadline;
        sleep 0.01;
    }

    $Running{ $self->{master} } = $self;
    weaken($Running{ $self->{master} });

    # it listens already: the daemon opens its sockets before it forks
    until ($self->pids == $self->{workers}) {
        die "nginx_instance: not all $self->{workers} workers started\n"
            if time > $deadline;
        sleep 0.01;
    }
}

sub read_pid {
    my $self = shift;

    open my $in, '<', "$self->{root}/logs/nginx.pid" or return undef;
    my $pid = <$in>;
    close $in;

    return defined $pid && $pid =~ /(\d+)/ ? $1 : undef;
}

# the pids of its worker processes
sub pids {
    my $self = shift;

    return () unless $self->{master};
    return grep { parent_of($_) == $self->{master} } all_pids();
}

sub all_pids {
    opendir my $dh, '/proc' or return ();
    my @pids = sort { $a <=> $b } grep { /^\d+$/ } readdir $dh;
    closedir $dh;
    return @pids;
}

sub parent_of {
    my $pid = shift;

    open my $in, '<', "/proc/$pid/stat" or return 0;
    my $stat = <$in> // '';
    close $in;

    # zombies are gone already
    return $stat =~ /\) ([^Z]) (\d+)/ ? $2 : 0;
}

sub ws_open {
    my ($self, $path, %opts) = @_;

    return WsRelay::Test::ws_open($path, port => $self->{port},
                                  welcome => { processId =>
                                      WsRelay::Test::pid_in($self->pids) },
                                  %opts);
}

sub ws_open_per_worker {
    my ($self, $path, $count, %opts) = @_;

    return WsRelay::Test::ws_open_per_worker($path, $count,
        port => $self->{port}, pids => [$self->pids],
        welcome => { processId => WsRelay::Test::pid_in($self->pids) },
        %opts);
}

sub error_log {
    my $self = shift;

    open my $in, '<', "$self->{root}/logs/error.log" or return '';
    my $log = do { local $/; <$in> };
    close $in;
    return $log;
}

# TERM (fast shutdown: a test waits for no client), then KILL what is
# left after 5 s: master and workers
sub stop {
    my $self = shift;

    my $master = delete $self->{master} or return;
    delete $Running{$master};
    return unless $self->{owner} == $$;

    my @group = ($master, grep { parent_of($_) == $master } all_pids());
    kill 'TERM', $master;

    my $deadline = time + 5;
    while (grep { alive($_) } @group) {
        if (time > $deadline) {
            kill 'KILL', grep { alive($_) } @group;
            last;
        }
        sleep 0.02;
    }
}

sub alive {
    my $pid = shift;

    waitpid $pid, WNOHANG;
    return kill(0, $pid) && parent_of($pid);
}

sub DESTROY {
    my $self = shift;

    local ($?, $@);
    $self->stop;
}

END {
    local $?;
    $_->stop for grep { defined } values %Running;
}


package WsRelay::Test;

sub max { $_[0] > $_[1] ? $_[0] : $_[1] }

1;
