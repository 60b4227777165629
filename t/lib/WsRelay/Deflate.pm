package WsRelay::Deflate;

# permessage-deflate (RFC 7692) for the Test::Nginx suites, on top of
# WsRelay::Test:
#   - pmd_compress / pmd_inflate: one message's payload, compressed or
#     inflated on its own (no context takeover), with the final 00 00 ff ff
#     removed or appended (RFC 7692, 7.2.1 and 7.2.2); pmd_inflate checks
#     the window: data that refers further back than 2^window_bits bytes
#     does not inflate;
#   - pmd_deflater: a compressor that keeps its context across messages
#     (a client that ignores client_no_context_takeover);
#   - pmd_bomb: a small payload that inflates to a huge message;
#   - ws_connect_deflate / ws_open_deflate: a live client (a
#     WsRelay::Test::Client) that offers the extension and reads compressed
#     server messages: its next_message (and so recv_json, call,
#     expect_close) inflates RSV1 messages and keeps the frame rules of
#     RFC 7692, and send_compressed sends compressed messages, whole or in
#     fragments.
#
#   use Test::Nginx::Socket 'no_plan';
#   use WsRelay::Test;
#   use WsRelay::Deflate;
#
# Needs only Perl's core Compress::Raw::Zlib.

use strict;
use warnings;

use Compress::Raw::Zlib qw(Z_OK Z_STREAM_END Z_BUF_ERROR Z_SYNC_FLUSH
                           Z_FULL_FLUSH Z_FINISH Z_DEFAULT_COMPRESSION
                           Z_BEST_COMPRESSION);
use Exporter ();
use Test::More ();

use WsRelay::Test ();

our @EXPORT = qw(
    pmd_compress pmd_inflate pmd_deflater pmd_bomb pmd_parse_response
    ws_connect_deflate ws_open_deflate worker_rss_kib
);

use constant TRAILER => "\x00\x00\xff\xff";


# --- payloads ----------------------------------------------------------------

# pmd_compress($data, window_bits => 15, level => 6, final => 0,
#              keep_tail => 0): the payload of one compressed message.
# final => 1 ends it with a final block (BFINAL, RFC 7692 7.2.3.2) instead
# of a sync flush; keep_tail => 1 leaves the 00 00 ff ff on.
sub pmd_compress {
    my ($data, %o) = @_;

    my ($d, $status) = Compress::Raw::Zlib::Deflate->new(
        -WindowBits   => -($o{window_bits} // 15),
        -Level        => $o{level} // Z_DEFAULT_COMPRESSION,
        -AppendOutput => 1,
    );
    die "deflateInit: $status\n" unless $status == Z_OK;

    my $out = '';
    $d->deflate($data, $out) == Z_OK or die "deflate failed\n";
    $d->flush($out, $o{final} ? Z_FINISH : Z_SYNC_FLUSH) == Z_OK
        or die "deflate flush failed\n";

    if (!$o{final} && !$o{keep_tail}) {
        die "no 00 00 ff ff after a sync flush\n"
            unless substr($out, -4) eq TRAILER;
        substr($out, -4, 4, '');
    }

    return $out;
}

# pmd_inflate($payload, window_bits => 15, max => bytes): the message, or
# undef with the reason in $@. The payload is fed one byte at a time, so
# zlib sees at most 2^window_bits bytes of history besides what the byte
# itself produces: a back-reference much further than the window fails
# ("invalid distance too far back"), which a one-shot inflate of the whole
# message would not notice.
sub pmd_inflate {
    my ($payload, %o) = @_;

    my ($i, $status) = Compress::Raw::Zlib::Inflate->new(
        -WindowBits   => -($o{window_bits} // 15),
        -ConsumeInput => 1,
        -AppendOutput => 0,
    );
    die "inflateInit: $status\n" unless $status == Z_OK;

    my $in = $payload . TRAILER;
    my $out = '';

    for my $pos (0 .. length($in) - 1) {
        my $byte = substr $in, $pos, 1;
        my $chunk;

        $status = $i->inflate($byte, $chunk);
        $out .= $chunk if defined $chunk;

        if (defined $o{max} && length $out > $o{max}) {
            $@ = "inflates past $o{max} bytes";
            return undef;
        }

        last if $status == Z_STREAM_END;

        if ($status != Z_OK && $status != Z_BUF_ERROR) {
            $@ = 'inflate: ' . ($i->msg() // "$status");
            return undef;
        }
    }

    $@ = '';
    return $out;
}

# A compressor that keeps its context from one message to the next:
#   my $d = pmd_deflater(window_bits => 15);  $d->compress($data)
sub pmd_deflater {
    my (%o) = @_;

    my ($d, $status) = Compress::Raw::Zlib::Deflate->new(
        -WindowBits   => -($o{window_bits} // 15),
        -AppendOutput => 1,
    );
    die "deflateInit: $status\n" unless $status == Z_OK;

    return bless { d => $d }, 'WsRelay::Deflate::Stream';
}

sub WsRelay::Deflate::Stream::compress {
    my ($self, $data) = @_;

    my $out = '';
    $self->{d}->deflate($data, $out) == Z_OK or die "deflate failed\n";
    $self->{d}->flush($out, Z_SYNC_FLUSH) == Z_OK or die "flush failed\n";
    substr($out, -4, 4, '') if substr($out, -4) eq TRAILER;
    return $out;
}

# pmd_bomb($bytes, $char): a payload that inflates to $bytes (a multiple of
# 64 KiB) copies of $char. It is one self-contained full-flush block of
# 64 KiB repeated: about a thousandth of the size it inflates to.
sub pmd_bomb {
    my ($bytes, $char) = @_;

    my $chunk = 65536;
    die "pmd_bomb: $bytes is not a multiple of $chunk\n" if $bytes % $chunk;

    my ($d) = Compress::Raw::Zlib::Deflate->new(
        -WindowBits => -15, -Level => Z_BEST_COMPRESSION, -AppendOutput => 1);

    my $data = ($char // 'a') x $chunk;
    my $block = '';
    $d->deflate($data, $block) == Z_OK
        or die "deflate failed\n";
    $d->flush($block, Z_FULL_FLUSH) == Z_OK or die "flush failed\n";

    my $out = $block x ($bytes / $chunk);
    substr($out, -4, 4, '');
    return $out;
}


# --- negotiation -------------------------------------------------------------

# The parameters of a Sec-WebSocket-Extensions response, as a client must
# check it (RFC 7692, 7.1): {} for none, a hash of the permessage-deflate
# parameters, or undef with the reason in $@ when a client has to fail the
# connection.
sub pmd_parse_response {
    my ($value, $offered_client_bits) = @_;

    return {} unless defined $value;

    my @exts = grep { /\S/ } split /,/, $value;
    if (@exts != 1) {
        $@ = 'not exactly one extension';
        return undef;
    }

    my ($name, @params) = map { s/^\s+|\s+$//gr } split /;/, $exts[0];
    if ($name ne 'permessage-deflate') {
        $@ = "unknown extension \"$name\"";
        return undef;
    }

    my %p = (permessage_deflate => 1);

    for my $param (@params) {
        my ($k, $v) = $param =~ /^([^=\s]+)\s*(?:=\s*"?([^"]*)"?)?$/
            or do { $@ = "bad parameter \"$param\""; return undef };

        if (exists $p{$k}) {
            $@ = "duplicate $k";
            return undef;
        }

        if ($k eq 'server_no_context_takeover'
            || $k eq 'client_no_context_takeover')
        {
            if (defined $v) {
                $@ = "$k with a value";
                return undef;
            }
            $p{$k} = 1;

        } elsif ($k eq 'server_max_window_bits'
                 || $k eq 'client_max_window_bits')
        {
            if (!defined $v || $v !~ /^(?:[89]|1[0-5])$/) {
                $@ = "$k without a valid value";
                return undef;
            }
            if ($k eq 'client_max_window_bits' && !$offered_client_bits) {
                $@ = 'client_max_window_bits not offered';
                return undef;
            }
            $p{$k} = $v + 0;

        } else {
            $@ = "unknown parameter $k";
            return undef;
        }
    }

    return \%p;
}

# ws_connect_deflate('/ws', offer => 'permessage-deflate; ...' | [offers,
# one Sec-WebSocket-Extensions header each] | undef, other options of
# WsRelay::Test::Client->new): connects; no welcome check. {pmd} holds the
# negotiated parameters ({} for none); dies when the response is one a
# client must refuse.
sub ws_connect_deflate {
    my ($path, %opts) = @_;

    my $offer = delete $opts{offer};
    my @offers = ref $offer ? @$offer : defined $offer ? ($offer) : ();
    my @headers = @{ delete $opts{headers} || [] };

    # WsRelay::Test::ws_handshake() keeps one header per name: the
    # others ride on the first one's line
    if (@offers) {
        push @headers, 'Sec-WebSocket-Extensions',
             join "\r\nSec-WebSocket-Extensions: ", @offers;
    }

    my $c = WsRelay::Test::Client->new($path, %opts, headers => \@headers);
    bless $c, 'WsRelay::Deflate::Client';

    my $resp = $c->header('Sec-WebSocket-Extensions');
    my $client_bits = grep { /client_max_window_bits/ } @offers;

    $c->{extensions} = $resp;
    $c->{pmd} = pmd_parse_response($resp, $client_bits)
        // die "handshake: bad Sec-WebSocket-Extensions \"$resp\": $@\n";

    return $c;
}

# ws_open_deflate('/ws', offer => ..., welcome => {...}, ...): connects,
# checks the welcome message like WsRelay::Test::ws_open, and by default
# that the extension was negotiated (negotiated => 0 to skip).
sub ws_open_deflate {
    my ($path, %opts) = @_;

    my $extra = delete $opts{welcome} || {};
    my $want = delete $opts{negotiated} // 1;
    $opts{offer} = 'permessage-deflate' unless exists $opts{offer};

    my $c = ws_connect_deflate($path, %opts);

    if ($want && !$c->{pmd}{permessage_deflate}) {
        die "handshake: permessage-deflate not negotiated ("
            . ($c->{extensions} // 'no Sec-WebSocket-Extensions') . ")\n";
    }

    my $m = $c->recv_json;

    WsRelay::Test::json_is($m, { type => 'welcome', message => 'connected',
                                 connectionId => WsRelay::Test::ID(),
                                 processId => WsRelay::Test::PID(),
                                 timestamp => WsRelay::Test::NOW(),
                                 %$extra },
                           "welcome on $path");

    $c->{id} = $m->{connectionId};
    $c->{pid} = $m->{processId};
    return $c;
}

# The resident memory of a process, in KiB (for the decompression bomb).
sub worker_rss_kib {
    my $pid = shift;

    open my $in, '<', "/proc/$pid/status" or return undef;
    while (<$in>) {
        return $1 if /^VmRSS:\s+(\d+)\s+kB/;
    }
    return undef;
}

sub import {
    my ($pkg, @symbols) = @_;
    my $caller = caller;

    # also into main, for "eval" sections, and into ws_session code
    Exporter::export($pkg, $caller, @symbols);
    Exporter::export($pkg, 'main', @symbols) if $caller ne 'main';
    Exporter::export($pkg, 'WsRelay::Test::Session', @symbols);
}


# --- the client ----------------------------------------------------------------

package WsRelay::Deflate::Client;

use strict;
use warnings;

our @ISA = ('WsRelay::Test::Client');

# send_compressed($data, opcode => 'text', window_bits => 15,
#     deflater => pmd_deflater(), payload => bytes (instead of compressing),
#     final => 0, fragments => [sizes of all but the last fragment],
#     between => frame bytes sent between fragments, rsv => first frame's
#     RSV bits (default 4: RSV1), cont_rsv => the continuations' (0))
sub send_compressed {
    my ($self, $data, %o) = @_;

    my $payload = $o{payload}
                  // ($o{deflater} ? $o{deflater}->compress($data)
                      : WsRelay::Deflate::pmd_compress($data, %o));

    my @parts;
    for my $size (@{ $o{fragments} || [] }) {
        push @parts, substr($payload, 0, $size, '');
    }
    push @parts, $payload;

    my $bytes = '';

    for my $i (0 .. $#parts) {
        $bytes .= $o{between} // '' if $i > 0;
        $bytes .= WsRelay::Test::ws_frame(
            opcode  => $i == 0 ? $o{opcode} // 'text' : 'cont',
            payload => $parts[$i],
            fin     => $i == $#parts ? 1 : 0,
            rsv     => $i == 0 ? $o{rsv} // 4 : $o{cont_rsv} // 0);
    }

    return $self->send_raw($bytes);
}

sub send_compressed_json {
    my ($self, $msg, %o) = @_;

    return $self->send_compressed(JSON::PP->new->utf8->canonical->encode($msg),
                                  %o);
}

# Like WsRelay::Test::Client::next_message, for a connection that may have
# negotiated permessage-deflate: a message whose first frame has RSV1 is
# inflated on its own (the server promised server_no_context_takeover),
# with the negotiated server window. The message hash also has
# compressed => 0|1, wire => the payload as sent, frames => count. Frames
# that break RFC 7692 (RSV1 without the extension, on a control frame or a
# continuation, other RSV bits) and compressed messages that do not inflate
# on their own die.
sub next_message {
    my ($self, $timeout) = @_;

    $timeout //= $self->{timeout};
    my $deadline = Time::HiRes::time() + $timeout;

    while (1) {
        my $f = $self->next_frame(WsRelay::Test::max(0, $deadline
                                                         - Time::HiRes::time()))
            or return undef;

        return { type => 'eof', why => $f->{why} } if $f->{name} eq 'eof';

        my $rsv1 = $f->{rsv} & 4;
        my $rsv = $f->{rsv};

        die "bad frame from server: RSV1 without permessage-deflate\n"
            if $rsv1 && !$self->{pmd}{permessage_deflate};
        die "bad frame from server: RSV1 on a $f->{name} frame\n"
            if $rsv1 && ($f->{opcode} >= 8 || $f->{opcode} == 0);
        die "bad frame from server: RSV2/RSV3 set\n" if $rsv & 3;

        # the frame rules of WsRelay::Test, with RSV1 taken care of
        local $f->{rsv} = 0;
        my $err = WsRelay::Test::frame_error($f, defined $self->{message});
        die "bad frame from server: $err\n" if $err;

        if ($f->{name} eq 'ping') {
            push @{ $self->{pings} }, Time::HiRes::time();
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
            $self->{message} = { type => $f->{name}, data => '',
                                 compressed => $rsv1 ? 1 : 0, frames => 0 };
        }

        $self->{message}{data} .= $f->{payload};
        $self->{message}{frames}++;
        next unless $f->{fin};

        my $m = delete $self->{message};
        $m->{wire} = $m->{data};

        if ($m->{compressed}) {
            my $bits = $self->{pmd}{server_max_window_bits} // 15;
            my $data = WsRelay::Deflate::pmd_inflate($m->{wire},
                                                     window_bits => $bits);
            die "a compressed message from the server does not inflate on"
                . " its own with a $bits-bit window: $@\n"
                unless defined $data;
            $m->{data} = $data;
        }

        die "invalid UTF-8 in a text message from the server\n"
            if $m->{type} eq 'text' && !WsRelay::Test::valid_utf8($m->{data});

        push @{ $self->{received} }, $m;
        return $m;
    }
}

# The next JSON message and the message hash it came in:
#   my ($json, $m) = $c->recv_json_m;  $m->{compressed}
sub recv_json_m {
    my ($self, $timeout) = @_;

    my $m = $self->next_message($timeout);

    die "expected a JSON text message, got "
        . WsRelay::Test::Client::describe($m) . "\n"
        unless $m && $m->{type} =~ /^(?:text|binary)$/;

    my $msg = eval { JSON::PP->new->utf8->decode($m->{data}) };
    die "not JSON: $m->{data}\n" unless defined $msg;
    return ($msg, $m);
}

1;
