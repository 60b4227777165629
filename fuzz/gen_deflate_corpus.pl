#!/usr/bin/perl

# Writes the seed corpus of deflate_fuzz: compressed messages as clients
# send them (sync-flushed, final block, stored, fixed and dynamic Huffman,
# bombs), invalid deflate data, and plain messages for the round trip;
# each file is a settings byte and a payload (see deflate_fuzz.c).
#
#   perl gen_deflate_corpus.pl [dir]       default dir: corpus/deflate

use strict;
use warnings;
use Compress::Raw::Zlib qw(Z_OK Z_SYNC_FLUSH Z_FULL_FLUSH Z_FINISH);
use Digest::SHA qw(sha256_hex);
use File::Path qw(make_path);

my $dir = shift // 'corpus/deflate';

# max indexes of deflate_fuzz.c
my %max = (0 => 0, 1 => 1, 15 => 2, 100 => 3, 4096 => 4, 16384 => 5,
           65536 => 6, '64m' => 7);

# compress($data, bits => 15, level => 6, flush => Z_SYNC_FLUSH,
#          tail => 1 to keep the 00 00 ff ff)
sub compress {
    my ($data, %o) = @_;

    my ($d, $st) = Compress::Raw::Zlib::Deflate->new(
        -WindowBits => -($o{bits} // 15), -Level => $o{level} // 6,
        -AppendOutput => 1);
    die "deflateInit: $st\n" unless $st == Z_OK;

    my $out = '';
    $d->deflate($data, $out) == Z_OK or die "deflate\n";
    $d->flush($out, $o{flush} // Z_SYNC_FLUSH) == Z_OK or die "flush\n";
    substr($out, -4, 4, '')
        if !$o{tail} && substr($out, -4) eq "\x00\x00\xff\xff";
    return $out;
}

# seed($name, $payload, max => key of %max, bits => round-trip window)
sub seed {
    my ($name, $payload, %o) = @_;
    my $settings = $max{ $o{max} // 65536 } | ((($o{bits} // 15) - 9) << 3);

    open my $fh, '>:raw', "$dir/$name" or die "$dir/$name: $!\n";
    print $fh chr($settings), $payload;
    close $fh;
}

make_path($dir);

my $json = '{"type":"chat","targetUserId":"u2","text":"hello there"}';
my $noise = join '', map { sha256_hex("n$_") } 1 .. 40;      # 2560 bytes
my $far = substr($noise, 0, 300) . substr($noise, 300, 1500)
          . substr($noise, 0, 300);

# compressed messages
seed('json', compress($json));
seed('json-max-15', compress($json), max => 15);
seed('json-max-0', compress($json), max => 0);
seed('json-final-block', compress($json, flush => Z_FINISH));
seed('json-tail-kept', compress($json, tail => 1));
seed('json-stored', compress($json, level => 0));
seed('json-bits-9', compress($json, bits => 9));
seed('noise-dynamic', compress($noise), max => 4096);
seed('noise-dynamic-small-max', compress($noise), max => 100);
seed('far-repeat', compress($far), max => 16384);
seed('empty-payload', '');
seed('empty-stored-block', "\x00");
seed('two-flushes', compress('abc', tail => 1) . compress('defabc'));
seed('full-flush', do {
    my ($d) = Compress::Raw::Zlib::Deflate->new(-WindowBits => -15,
                                                -AppendOutput => 1);
    my $o = '';
    $d->deflate('abcabcabc', $o);
    $d->flush($o, Z_FULL_FLUSH);
    $d->deflate('abcabcabc', $o);
    $d->flush($o, Z_SYNC_FLUSH);
    substr($o, 0, -4);
});
seed('data-after-final', compress($json, flush => Z_FINISH) . "garbage");

# bombs: a small payload, a big message
seed('bomb-64k', compress('a' x 65536, level => 9), max => 4096);
seed('bomb-64k-fits', compress('a' x 65536, level => 9), max => 65536);
seed('bomb-4m', compress('b' x (4 << 20), level => 9), max => '64m');

# invalid deflate data
seed('reserved-block-type', "\xff\xff\xff\xff");
seed('bad-stored-length', "\x00\x05\x00\x00\x00hello");
seed('bad-huffman-table', "\x04\xff\xff\xff\xff\xff\xff");
seed('distance-too-far', do {
    my ($d) = Compress::Raw::Zlib::Deflate->new(-WindowBits => -15,
                                                -AppendOutput => 1);
    my $o = '';
    $d->deflate('abcdefgh' x 4, $o);
    $d->flush($o, Z_SYNC_FLUSH);
    $o = '';
    $d->deflate('abcdefgh' x 4, $o);
    $d->flush($o, Z_SYNC_FLUSH);
    substr($o, 0, -4);
});
seed('truncated', substr(compress($noise), 0, 100));

# plain messages for the round trip, at each window
for my $bits (9 .. 15) {
    seed("plain-far-repeat-$bits", $far, bits => $bits);
}
seed('plain-json', $json, bits => 10);
seed('plain-empty', '', bits => 12);
seed('plain-binary', join('', map { chr } 0 .. 255) x 3, bits => 9);
