#!/usr/bin/perl

# Writes the seed corpus of frame_fuzz: valid frames, fragmented
# messages, edge cases and protocol errors, each file being a settings
# byte, chunk sizes and a client byte stream (see frame_fuzz.c).
#
#   perl gen_corpus.pl [dir]       default dir: corpus/frame

use strict;
use warnings;
use File::Path qw(make_path);

my $dir = shift // 'corpus/frame';

# max_message_size indexes of frame_fuzz.c
my %max = (0 => 0, 1 => 1, 7 => 2, 125 => 3, 126 => 4, 1000 => 5,
           65536 => 6, unlimited => 7);

my @keys = ("\x37\xfa\x21\x3d", "\xa5\x5a\x01\xff", "\x00\x00\x00\x00");
my $frames = 0;

# frame($b0, $payload, len => 16|64 forced, unmasked => 1, declared => n)
sub frame {
    my ($b0, $payload, %o) = @_;
    my $len = $o{declared} // length $payload;
    my $m = $o{unmasked} ? 0 : 0x80;
    my $key = $keys[$frames++ % @keys];
    my $form = $o{len} // ($len < 126 ? 7 : $len < 65536 ? 16 : 64);
    my $f = chr $b0;

    if ($form == 7) {
        $f .= chr($m | $len);
    } elsif ($form == 16) {
        $f .= chr($m | 126) . pack('n', $len);
    } else {
        $f .= chr($m | 127) . pack('Q>', $len);
    }

    return $f . $payload if $o{unmasked};

    my $masked = join '', map {
        chr(ord(substr($payload, $_, 1)) ^ ord(substr($key, $_ % 4, 1)))
    } 0 .. length($payload) - 1;

    return $f . $key . $masked;
}

sub close_payload {
    my ($code, $reason) = @_;
    return pack('n', $code) . ($reason // '');
}

# seed($name, $stream, max => key of %max, rsv1 => 1, chunks => [sizes])
sub seed {
    my ($name, $stream, %o) = @_;
    my @chunks = @{ $o{chunks} // [] };
    my $settings = ($o{rsv1} ? 1 : 0)
                   | ($max{ $o{max} // 65536 } << 1)
                   | (@chunks << 4);

    open my $fh, '>:raw', "$dir/$name" or die "$dir/$name: $!\n";
    print $fh chr($settings), (map { chr } @chunks), $stream;
    close $fh;
}

make_path($dir);

my $text125 = 'a' x 125;
my $utf8 = "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5 \xf0\x9f\x98\x80";

# valid frames
seed('text', frame(0x81, 'Hello'));
seed('text-chunks', frame(0x81, 'Hello, world') . frame(0x82, "\x00\xff"),
     chunks => [1, 3, 0, 7]);
seed('binary-empty', frame(0x82, ''));
seed('text-125', frame(0x81, $text125));
seed('binary-126', frame(0x82, 'b' x 126), chunks => [2, 2, 4, 100]);
seed('binary-300-len16', frame(0x82, 'c' x 300));
seed('binary-len16-short', frame(0x82, 'short', len => 16));
seed('binary-len64-short', frame(0x82, 'short', len => 64));
seed('binary-len64-cut', frame(0x82, 'x' x 100, declared => 65536));
seed('text-utf8', frame(0x81, $utf8), chunks => [1]);
seed('ping-pong', frame(0x89, 'ping') . frame(0x8a, 'pong')
                  . frame(0x89, '') . frame(0x8a, ''));
seed('ping-125', frame(0x89, $text125));
seed('close-empty', frame(0x88, ''));
seed('close-1000', frame(0x88, close_payload(1000)));
seed('close-reason', frame(0x88, close_payload(1001, 'going away')));
seed('close-utf8-reason', frame(0x88, close_payload(4000, $utf8)));
seed('compressed', frame(0xc1, 'deflated') . frame(0x41, 'def')
                   . frame(0x80, 'lated'), rsv1 => 1);
seed('zero-length', frame(0x81, '') . frame(0x01, '') . frame(0x89, '')
                    . frame(0x00, '') . frame(0x80, ''));

# fragmented messages, control frames in between
seed('fragments', frame(0x01, 'Hel') . frame(0x89, 'p1') . frame(0x00, 'lo ')
                  . frame(0x8a, '') . frame(0x80, 'world'),
     chunks => [5, 1, 9]);
seed('fragments-binary', frame(0x02, '0123') . frame(0x00, '4567', len => 16)
                         . frame(0x88, close_payload(1000, 'bye'))
                         . frame(0x80, '89', len => 64));
seed('fragments-utf8-split', frame(0x01, "a\xf0\x9f") . frame(0x89, '')
                             . frame(0x00, "\x98") . frame(0x80, "\x80b"));
seed('fragments-at-max', frame(0x01, '0123') . frame(0x80, '456'),
     max => 7);

# edge cases of the validators
seed('text-invalid-utf8', frame(0x81, "ok\xed\xa0\x80"));
seed('text-overlong', frame(0x81, "\xc0\xaf\xe0\x80\x80"));
seed('text-truncated', frame(0x81, "abc\xe2\x82"));
seed('text-max-codepoint', frame(0x81, "\xf4\x8f\xbf\xbf\xf4\x90\x80\x80"));
seed('close-1-byte', frame(0x88, "\x03"));
seed('close-1005', frame(0x88, close_payload(1005)));
seed('close-5000', frame(0x88, close_payload(5000)));
seed('close-invalid-reason', frame(0x88, close_payload(1000, "\xff")));

# protocol errors
seed('error-unmasked', frame(0x81, 'Hello', unmasked => 1));
seed('error-rsv2', frame(0xa1, 'x'));
seed('error-rsv1', frame(0xc1, 'x'));
seed('error-rsv1-control', frame(0xc9, ''), rsv1 => 1);
seed('error-rsv1-continuation', frame(0x41, 'a') . frame(0xc0, 'b'),
     rsv1 => 1);
seed('error-opcode-3', frame(0x83, 'x'));
seed('error-opcode-b', frame(0x8b, 'x'));
seed('error-control-126', frame(0x89, 'p' x 126));
seed('error-control-fragmented', frame(0x09, 'x'));
seed('error-continuation', frame(0x80, 'x'));
seed('error-data-in-fragmented', frame(0x01, 'a') . frame(0x81, 'b'));
seed('error-len64-top-bit', frame(0x82, '', declared => 1 << 63),
     max => 'unlimited');
seed('error-too-big', frame(0x81, '01234567'), max => 7);
seed('error-too-big-fragments', frame(0x01, '0123') . frame(0x89, 'p')
                                . frame(0x80, '4567'), max => 7);
seed('error-max-zero', frame(0x81, '') . frame(0x82, 'x'), max => 0);
