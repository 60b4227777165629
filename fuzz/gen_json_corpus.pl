#!/usr/bin/perl

# Writes the seed corpus of json_fuzz: flat messages the fast reader
# takes and the near misses it must decline (escapes, control
# characters, duplicates, a ninth member, non-string values, invalid
# UTF-8, the empty object), nesting around the depth limit, numbers and
# values JavaScript calls falsy, strings to write.  Each file is a flags
# byte (see json_fuzz.c) and the text.
#
#   perl gen_json_corpus.pl [dir]       default dir: corpus/json

use strict;
use warnings;
use File::Path qw(make_path);

my $dir = shift // 'corpus/json';

# flags of json_fuzz.c
my %flag = (any => 1, nul => 2, real => 4);

my %seen;

sub seed {
    my ($name, $text, @flags) = @_;
    my $flags = 0;
    $flags |= $flag{$_} for @flags;

    die "duplicate seed $name\n" if $seen{$name}++;

    open my $fh, '>:raw', "$dir/$name" or die "$dir/$name: $!\n";
    print $fh chr($flags) . $text;
    close $fh;
}

make_path($dir);

my $eight = join ',', map { "\"k$_\":\"v$_\"" } 1 .. 8;

# what the fast reader takes
seed('flat-ping', '{"type":"ping"}');
seed('flat-chat', '{"type":"chat","targetUserId":"bob","text":"hi"}');
seed('flat-space', " \t\r\n{ \"type\" : \"chat\" ,\n\"text\":\"\" } \n");
seed('flat-utf8', "{\"type\":\"chat\",\"text\":\"\xc3\xa9\xe4\xb8\xad"
                  . "\xf0\x9f\x98\x80\"}");
seed('flat-eight', "{$eight}");

# what it declines
seed('flat-nine', "{$eight,\"k9\":\"v9\"}");
seed('flat-empty', '{}');
seed('flat-escape', '{"type":"chat","text":"a\"b\\\\c\\u0041"}');
seed('flat-control', "{\"type\":\"chat\",\"text\":\"a\tb\"}");
seed('flat-duplicate', '{"type":"ping","type":"chat"}');
seed('flat-number', '{"type":"chat","text":1}');
seed('flat-nested', '{"type":"chat","text":{"a":"b"}}');
seed('flat-overlong', "{\"type\":\"\xc0\x80\"}");
seed('flat-surrogate', "{\"type\":\"\xed\xa0\x80\"}");
seed('flat-truncated', "{\"type\":\"\xe2\x82\"}");
seed('flat-trailing', '{"type":"ping"} x');
seed('flat-two', '{"type":"ping"}{}');
seed('flat-unclosed', '{"type":"ping"');
seed('flat-nul', "{\"type\":\"pi\x00ng\"}");
seed('flat-bom', "\xef\xbb\xbf{\"type\":\"ping\"}");

# the depth limit: 32 levels pass, 33 do not
seed('depth-32', ('[' x 32) . (']' x 32));
seed('depth-33', ('[' x 33) . (']' x 33));
seed('depth-33-objects', ('{"a":' x 33) . '1' . ('}' x 33));
seed('depth-in-string', '{"a":"' . ('[' x 40) . '\\"{{"}');
seed('depth-unbalanced', (']' x 5) . ('[' x 30) . (']' x 30));

# values, and what JavaScript calls falsy
seed('falsy', '[null,false,"",0,-0,0.0,-0.0,0e10,1e-400,[],{},"0",'
              . '" ",true,1,-1,0.5,"false"]');
seed('falsy-any', '0', 'any');
seed('falsy-real', '[0,-0,1,9223372036854775807]', 'real');
seed('numbers', '[1e400,-1e400,99999999999999999999,-9223372036854775808,'
                . '1.7976931348623157e308,01,1.,.5,-]');
seed('nul-escape', '{"a":"\\u0000","b\\u0000":"c"}', 'nul');
seed('strings', "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u001f\\u007f\x7f"
                . "\xe2\x80\xa8\\ud83d\\ude00\"", 'any');
seed('string-raw', "\x01\x1f\"\\ \x7f\xc3\xa9\xff");
