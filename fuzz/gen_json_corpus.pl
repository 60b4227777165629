#!/usr/bin/perl

# Writes the seed corpus of json_fuzz: messages of the protocol, what
# JSON.parse() takes and jansson does not (lone surrogates, \u0000 in
# names, numbers beyond a double), duplicate names, nesting around the
# depth limit, numbers as String() writes them, values JavaScript calls
# falsy, escaped names (long ones too), what is no JSON, and strings to
# write (WTF-8, control characters, invalid UTF-8).  Each file is the
# text (see json_fuzz.c).
#
#   perl gen_json_corpus.pl [dir]       default dir: corpus/json

use strict;
use warnings;
use File::Path qw(make_path);

my $dir = shift // 'corpus/json';

my %seen;

sub seed {
    my ($name, $text) = @_;

    die "duplicate seed $name\n" if $seen{$name}++;

    open my $fh, '>:raw', "$dir/$name" or die "$dir/$name: $!\n";
    print $fh $text;
    close $fh;
}

make_path($dir);

# the protocol's messages
seed('ping', '{"type":"ping"}');
seed('chat', '{"type":"chat","targetUserId":"bob","text":"hi"}');
seed('notification', '{"type":"notification","targetUserId":"bob",'
                     . '"action":"new","data":{"id":[1,2.5,null,true]}}');
seed('register', '{"type":"register","userId":"\u00e9\u4e2d\ud83d\ude00"}');
seed('space', " \t\r\n{ \"type\" : \"chat\" ,\n\"text\": [ 1 , { \"a\" :"
              . " \"b c\" } ] } \n");
seed('utf8', "{\"type\":\"chat\",\"text\":\"\xc3\xa9\xe4\xb8\xad"
             . "\xf0\x9f\x98\x80\x7f\"}");
seed('empty', '{}');
seed('empty-name', '{"":1,"a":{"":2}}');

# JSON.parse() takes them, jansson does not
seed('lone-surrogates', '{"type":"\ud800","text":"\udc00\ud800x\ud83d",'
                        . '"\udfff":"a","data":["\udbff\udfff\udc00"]}');
seed('nul', '{"type":"\u0000","a\u0000b":1,"\u0000":{"\u0000":"\u0000"}}');
seed('overflow', '{"type":1e400,"text":-1e400,"data":[1e309,-2E+308],'
                 . '"action":' . ('9' x 310) . '}');

# duplicate names: the last one counts
seed('duplicates', '{"type":"chat","text":1,"type":"ping","text":[2],'
                   . '"data":{"a":1,"a":2},"text":{"b":3}}');
seed('duplicate-escaped', '{"type":"x","\u0074ype":"ping","ty\u0070e":5}');

# escaped names; more than 32 bytes of text for a short name
seed('escaped-names', '{"\u0074\u0079\u0070\u0065":"ping",'
                      . '"\u0061\u0061\u0061\u0061\u0061\u0061":1,'
                      . '"aaaaaa":2,'
                      . '"\u0061\u0061\u0061\u0061\u0061\u0061":3}');
seed('long-names', '{"' . ('n' x 32) . '":1,"' . ('n' x 33) . '":2,"'
                   . ('\u006e' x 5) . '":3,"' . ('\u00e9' x 6) . '":4}');
seed('many-names', '{' . join(',', map { "\"k$_\":$_" } 1 .. 40) . '}');

# the depth limit: a member's value and any other value, 1000 levels
seed('depth-1000', '{"a":' . ('[' x 1000) . (']' x 1000) . '}');
seed('depth-1001', '{"a":' . ('[' x 1001) . (']' x 1001) . '}');
seed('depth-1000-array', ('[' x 1000) . (']' x 1000));
seed('depth-1001-array', ('[' x 1001) . (']' x 1001));
seed('depth-objects', '{"a":' . ('{"b":' x 999) . '[]' . ('}' x 999) . '}');
seed('depth-in-string', '{"a":"' . ('[' x 40) . '\\"{{"}');
seed('depth-unbalanced', (']' x 5) . ('[' x 30) . (']' x 30));
seed('depth-2049', ('[' x 2049) . (']' x 2049));

# numbers as String() writes them, and what JavaScript calls falsy
seed('numbers', '{"type":[1.50,-0,0e5,1e-400,1e21,1e20,1e-7,1e-6,'
                . '123456789012345678,0.1,-1.5e-300,5e-324,'
                . '1.7976931348623157e308,9007199254740993,100,1E+2],'
                . '"text":123456789012345,"data":-123456789012345,'
                . '"action":1234567890123456}');
seed('number-forms', '{"type":0.000001234,"text":1.5e300,"data":2e-7,'
                     . '"action":-0.0e-0,"userId":4.35}');
seed('falsy', '{"type":null,"userId":false,"targetUserId":"",'
              . '"text":0,"action":-0,"data":0e5}');
seed('falsy-not', '{"type":"0","userId":" ","targetUserId":[],'
                  . '"text":{},"action":"false","data":1e-300}');
seed('falsy-underflow', '{"type":1e-400,"text":-0.000e99,"data":0.0}');
seed('string-of', '{"type":[null],"text":[[],[null,null]],'
                  . '"data":[{"a":[1,2]},"a,b",true,false,["x"]],'
                  . '"action":{"type":1}}');

# not JSON
seed('trailing', '{"type":"ping"} x');
seed('two', '{"type":"ping"}{}');
seed('unclosed', '{"type":"ping"');
seed('bom', "\xef\xbb\xbf{\"type\":\"ping\"}");
seed('nul-byte', "{\"type\":\"pi\x00ng\"}");
seed('nul-after', "0\x00");
seed('control', "{\"type\":\"a\tb\"}");
seed('bad-escapes', '["\x", "\u12", "\ud800\u", "\'"]');
seed('bad-numbers', '[01,1.,.5,-,+1,1e,0x1,1.e5,-01]');
seed('bad-literals', '[nul,tru,falsey,NaN,Infinity]');
seed('overlong', "{\"type\":\"\xc0\x80\"}");
seed('raw-surrogate', "{\"type\":\"\xed\xa0\x80\"}");
seed('truncated', "{\"type\":\"\xe2\x82\"}");
seed('too-high', "[\"\xf4\x90\x80\x80\"]");

# any other value is declined
seed('scalar', '-0.5e3');
seed('string', '"\"\\\\\/\b\f\n\r\t\u001f\u007f' . "\x7f" . '\u2028"');
seed('array', '[1,"a",{}]');

# strings to write: WTF-8, control characters, invalid UTF-8
seed('write-wtf8', "\xed\xa0\x80a\xed\xbf\xbf\xed\xa0\x80\xf0\x9f\x98\x80");
seed('write-pair', "\xed\xa0\x80\xed\xb0\x80");
seed('write-controls', join('', map { chr } 0 .. 0x20) . "\"\\/\x7f");
seed('write-invalid', "\xff\xfe\xc3\x28\xe2\x82\xf8\x88\x80\x80\x80");
