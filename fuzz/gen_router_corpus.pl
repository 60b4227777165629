#!/usr/bin/perl

# Writes the seed corpus of router_fuzz: every client message of the wire
# protocol, valid and not, edge cases of JSON as JSON.parse() reads it
# (nesting up to 1000 levels, numbers beyond a double, -0, 0e5, 1.50,
# duplicate names, \u0000, lone surrogates, escaped names and types,
# invalid UTF-8), falsy fields, types that String() names, and sequences
# with Redis up (PUBLISH replies, acks, timeouts), closed connections and
# failed allocations.
# Each file is a settings byte and records (see router_fuzz.c).
#
#   perl gen_router_corpus.pl [dir]       default dir: corpus/router

use strict;
use warnings;
use File::Path qw(make_path);

my $dir = shift // 'corpus/router';

# settings bits of router_fuzz.c
my %set = (fixed0 => 0x01, fixed1 => 0x02, redis => 0x04, fail => 0x08,
           refuse2 => 0x10, capacity => 0x20, odd_id => 0x40,
           single => 0x80);

# records: a control byte (connection, operation) and a payload
sub msg { my ($conn, $text) = @_; return chr($conn) . $text }
sub published { my ($k, $n) = @_; return chr(4 << 2) . chr($k) . chr($n & 0xff) }
sub ack { my ($k, $n) = @_; return chr(5 << 2) . chr($k) . chr($n) }
sub timeout { return chr(6 << 2) }
sub reopen { my ($conn) = @_; return chr(7 << 2 | 0x20 | $conn) }
sub refuse { my ($conn) = @_; return chr(7 << 2 | $conn) }

my %seen;

# seed($name, [records], settings => [names], fail => n)
sub seed {
    my ($name, $records, %o) = @_;
    my $settings = 0;
    $settings |= $set{$_} for @{ $o{settings} // [] };

    my $data = chr $settings;
    $data .= chr($o{fail} - 1) if $settings & $set{fail};

    for my $r (@$records) {
        die "$name: a record holds the separator 0xff\n" if $r =~ /\xff/;
    }

    $data .= join "\xff", @$records;

    die "duplicate seed $name\n" if $seen{$name}++;

    open my $fh, '>:raw', "$dir/$name" or die "$dir/$name: $!\n";
    print $fh $data;
    close $fh;
}

# one message, any bytes, from connection 0
sub single {
    my ($name, $text, @settings) = @_;
    my $data = chr($set{single} | (@settings ? $set{$settings[0]} : 0)) . $text;

    die "duplicate seed $name\n" if $seen{$name}++;

    open my $fh, '>:raw', "$dir/$name" or die "$dir/$name: $!\n";
    print $fh $data;
    close $fh;
}

make_path($dir);

# connection 0 is alice, 1 and 2 are bob, 3 has no user (router_fuzz.c)

# every message of the protocol (README, "Wire protocol")
seed('register', [msg(3, '{"type":"register","userId":"carol"}')]);
seed('register-again', [msg(0, '{"type":"register","userId":"alice"}'),
                        msg(0, '{"type":"register","userId":"alice2"}'),
                        msg(0, '{"type":"register","userId":"bob"}')]);
seed('register-missing', [msg(3, '{"type":"register"}')]);
seed('register-falsy', [msg(3, '{"type":"register","userId":""}'),
                        msg(3, '{"type":"register","userId":0}'),
                        msg(3, '{"type":"register","userId":false}'),
                        msg(3, '{"type":"register","userId":null}'),
                        msg(3, '{"type":"register","userId":0.0}')]);
seed('register-not-string', [msg(3, '{"type":"register","userId":42}'),
                             msg(3, '{"type":"register","userId":true}'),
                             msg(3, '{"type":"register","userId":["a"]}'),
                             msg(3, '{"type":"register","userId":{"a":1}}')]);
seed('register-256', [msg(3, '{"type":"register","userId":"'
                             . ('u' x 256) . '"}')]);
seed('register-257', [msg(3, '{"type":"register","userId":"'
                             . ('u' x 257) . '"}')]);
seed('register-fixed', [msg(0, '{"type":"register","userId":"alice"}'),
                        msg(0, '{"type":"register","userId":"mallory"}'),
                        msg(1, '{"type":"register","userId":"bob"}')],
     settings => ['fixed0', 'fixed1']);
seed('register-unicode', [msg(3, '{"type":"register","userId":"\u00e9\u4e2d'
                                 . '\ud83d\ude00"}'),
                          msg(0, '{"type":"chat","targetUserId":'
                                 . '"\u00e9\u4e2d\ud83d\ude00","text":"x"}')]);
seed('ping', [msg(0, '{"type":"ping"}'), msg(3, '{"type":"ping","x":[1]}')]);
seed('chat', [msg(0, '{"type":"chat","targetUserId":"bob","text":"hi"}')]);
seed('chat-self', [msg(1, '{"type":"chat","targetUserId":"bob",'
                          . '"text":"to my other tab"}')]);
seed('chat-nobody', [msg(0, '{"type":"chat","targetUserId":"nobody",'
                            . '"text":"hi"}')]);
seed('chat-echo', [msg(0, '{"type":"chat","text":"hi"}'),
                   msg(3, '{"type":"chat","targetUserId":null,"text":1}'),
                   msg(0, '{"type":"chat","targetUserId":"","text":[]}'),
                   msg(0, '{"type":"chat","targetUserId":0}'),
                   msg(0, '{"type":"chat","targetUserId":false}')]);
seed('chat-not-string', [msg(0, '{"type":"chat","targetUserId":7}'),
                         msg(0, '{"type":"chat","targetUserId":{}}'),
                         msg(0, '{"type":"chat","targetUserId":true}')]);
seed('chat-text-any', [msg(0, '{"type":"chat","targetUserId":"bob",'
                              . '"text":{"a":[1,2.5,null,true],"b":"c"}}'),
                       msg(0, '{"type":"chat","targetUserId":"bob"}')]);
seed('chat-sender-spoof', [msg(3, '{"type":"chat","targetUserId":"alice",'
                                  . '"text":"x","sender":"bob"}')]);
seed('chat-long-target', [msg(0, '{"type":"chat","targetUserId":"'
                                 . ('t' x 300) . '","text":"x"}')]);
seed('chat-refused', [msg(0, '{"type":"chat","targetUserId":"bob",'
                             . '"text":"one tab full"}'),
                      refuse(1),
                      msg(0, '{"type":"chat","targetUserId":"bob"}')],
     settings => ['refuse2']);
seed('notification', [msg(0, '{"type":"notification","targetUserId":"bob",'
                             . '"action":"new_message","data":{"id":1}}')]);
seed('notification-defaults', [msg(3, '{"type":"notification",'
                                      . '"targetUserId":"alice"}'),
                               msg(3, '{"type":"notification",'
                                      . '"targetUserId":"alice",'
                                      . '"action":"","data":0}'),
                               msg(3, '{"type":"notification",'
                                      . '"targetUserId":"alice",'
                                      . '"action":[1],"data":"s"}')]);
seed('notification-missing', [msg(0, '{"type":"notification"}'),
                              msg(0, '{"type":"notification",'
                                     . '"targetUserId":""}'),
                              msg(0, '{"type":"notification",'
                                     . '"targetUserId":5}')]);
seed('unsupported', [msg(0, '{"type":"subscribe"}'),
                     msg(0, '{"type":"PING"}'),
                     msg(0, '{"type":""}'),
                     msg(0, '{"type":123}'),
                     msg(0, '{"type":-1.5e300}'),
                     msg(0, '{"type":null}'),
                     msg(0, '{"type":{"a":["b"]}}'),
                     msg(0, '{"kind":"ping"}'),
                     msg(0, '{}')]);
seed('not-json', [msg(0, 'hello'), msg(0, ''), msg(0, ' '),
                  msg(0, '{"type":"ping"'), msg(0, '{"type":"ping"}}'),
                  msg(0, '{"type":"ping"} x'), msg(0, '[1,2,3]'),
                  msg(0, '"ping"'), msg(0, '42'), msg(0, 'null'),
                  msg(0, "\xef\xbb\xbf{\"type\":\"ping\"}")]);

# JSON edge cases: a member's value may nest 1000 levels, not 1001
seed('nesting-1000', [msg(0, '{"type":"chat","text":' . ('[' x 1000)
                             . (']' x 1000) . '}')]);
seed('nesting-1001', [msg(0, '{"type":"chat","text":' . ('[' x 1001)
                             . (']' x 1001) . '}')]);
seed('nesting-objects', [msg(0, '{"type":"chat","text":' . ('{"a":' x 999)
                                . '[]' . ('}' x 999) . '}')]);
seed('nesting-in-string', [msg(0, '{"type":"chat","text":"' . ('[' x 100)
                                  . '\\"{{{"}')]);
single('nesting-2049', ('[' x 2049) . (']' x 2049));
single('nesting-unclosed', '{"a":' x 40);
seed('numbers', [msg(0, '{"type":"chat","text":1e400}'),
                 msg(0, '{"type":"chat","text":-1e-400}'),
                 msg(0, '{"type":"chat","text":99999999999999999999}'),
                 msg(0, '{"type":"chat","text":-9223372036854775808}'),
                 msg(0, '{"type":"chat","text":9223372036854775807}'),
                 msg(0, '{"type":"chat","text":-0}'),
                 msg(0, '{"type":"chat","text":1.7976931348623157e308}'),
                 msg(0, '{"type":"chat","text":01}'),
                 msg(0, '{"type":"chat","targetUserId":-0.0}'),
                 msg(0, '{"type":"chat","targetUserId":0e5,"text":1.50}'),
                 msg(0, '{"type":"chat","targetUserId":1e-400,'
                        . '"text":[ 1E+2 , -0.0e-0 ]}'),
                 msg(0, '{"type":"notification","targetUserId":"bob",'
                        . '"action":-0,"data":0.000e99}'),
                 msg(0, '{"type":"notification","targetUserId":"bob",'
                        . '"action":1e400,"data":-1e400}')]);
seed('falsy', [msg(3, '{"type":"register","userId":-0}'),
               msg(3, '{"type":"register","userId":0e5}'),
               msg(3, '{"type":"register","userId":1e-400}'),
               msg(3, '{"type":"register","userId":[]}'),
               msg(3, '{"type":"register","userId":{}}'),
               msg(0, '{"type":"notification","targetUserId":0e-7}'),
               msg(0, '{"type":"notification","targetUserId":"bob",'
                      . '"action":"","data":false}'),
               msg(0, '{"type":"notification","targetUserId":"bob",'
                      . '"action":null,"data":""}'),
               msg(0, '{"type":"notification","targetUserId":"bob",'
                      . '"action":"0","data":[]}')]);
seed('string-of-type', [msg(0, '{"type":1e400}'),
                        msg(0, '{"type":-1e400}'),
                        msg(0, '{"type":-0}'),
                        msg(0, '{"type":1.50}'),
                        msg(0, '{"type":0e5}'),
                        msg(0, '{"type":123456789012345678}'),
                        msg(0, '{"type":0.000001}'),
                        msg(0, '{"type":1.5e-7}'),
                        msg(0, '{"type":1e21}'),
                        msg(0, '{"type":[1e21,1e-7,null,[2,[3,[]]],{},'
                               . '"a,b",true]}'),
                        msg(0, '{"type":[null]}'),
                        msg(0, '{"type":[[],[null,null]]}'),
                        msg(0, '{"type":false}'),
                        msg(0, '{"type":"\\u0000"}'),
                        msg(0, '{"type":"<\\u001f>"}')]);
seed('duplicate-keys', [msg(0, '{"type":"ping","type":"chat"}'),
                        msg(0, '{"type":"chat","type":"ping"}'),
                        msg(0, '{"type":"chat","targetUserId":"bob",'
                               . '"text":{"a":1,"a":2}}'),
                        msg(0, '{"type":"ping","targetUserId":"bob",'
                               . '"type":"chat","targetUserId":"alice",'
                               . '"text":1,"text":[2]}'),
                        msg(3, '{"type":"register","userId":"x",'
                               . '"userId":"carol"}'),
                        msg(0, '{"type":"chat","type":5}')]);
seed('escaped-names', [msg(0, '{"\\u0074ype":"ping"}'),
                       msg(0, '{"\\u0074\\u0079\\u0070\\u0065":"ping"}'),
                       msg(0, '{"type":"chat","\\u0074\\u0061\\u0072'
                              . '\\u0067\\u0065\\u0074\\u0055\\u0073'
                              . '\\u0065\\u0072\\u0049\\u0064":"bob"}'),
                       msg(0, '{"type":"\\u0070ing"}'),
                       msg(0, '{"type":"\\u0070\\u0069\\u006e\\u0067"}'),
                       msg(0, '{"type":"\\u006e\\u006f\\u0074ification",'
                              . '"targetUserId":"bob"}')]);
seed('nul-names', [msg(0, '{"type\\u0000":"chat","type":"ping"}'),
                   msg(0, '{"type":"ping","\\u0000":1,"a\\u0000b":{'
                          . '"\\u0000":2}}'),
                   msg(0, '{"type":"chat","text":{"\\u0000":"\\u0000"}}')]);
seed('lone-surrogates', [msg(3, '{"type":"register","userId":"\\ud800"}'),
                         msg(0, '{"type":"chat","targetUserId":"\\ud800",'
                                . '"text":"\\udfff\\ud800x"}'),
                         msg(1, '{"type":"notification",'
                                . '"targetUserId":"\\ud800",'
                                . '"data":["\\udc00"]}'),
                         msg(0, '{"type":"\\udc00"}'),
                         msg(0, '{"type":["\\ud800","\\udfff"]}'),
                         msg(0, '{"type":"chat","text":"\\ud83d\\ude00'
                                . '\\ud83d"}')]);
seed('escapes', [msg(0, '{"type":"chat","text":"\\"\\\\\\/\\b\\f\\n\\r\\t'
                        . '\\u0041\\u00e9"}'),
                 msg(0, '{"type":"chat","text":"\\ud800"}'),
                 msg(0, '{"type":"chat","text":"\\udc00\\ud800"}'),
                 msg(0, '{"type":"chat","text":"\\ud83d\\ude00"}'),
                 msg(0, '{"type":"chat","text":"\\x41"}'),
                 msg(0, '{"type":"chat","text":"\\u12"}'),
                 msg(0, '{"type":"\\u0070ing"}')]);
seed('nul', [msg(3, '{"type":"register","userId":"a\\u0000b"}'),
             msg(3, '{"type":"register","userId":"\\u0000"}'),
             msg(0, '{"type":"chat","targetUserId":"bob\\u0000",'
                    . '"text":"x"}'),
             msg(0, '{"type":"ping\\u0000x"}'),
             msg(0, "{\"type\":\"ping\"}\x00"),
             msg(0, "{\"type\":\"pi\x00ng\"}")]);
seed('invalid-utf8', [msg(0, "{\"type\":\"chat\",\"text\":\"\xc0\x80\"}"),
                      msg(0, "{\"type\":\"chat\",\"text\":\"\xed\xa0\x80\"}"),
                      msg(0, "{\"type\":\"chat\",\"text\":\"\xf4\x90\x80\x80\"}"),
                      msg(0, "{\"type\":\"chat\",\"text\":\"\xe2\x82\"}"),
                      msg(3, "{\"type\":\"register\",\"userId\":\"\xfe\"}")]);
seed('control-chars', [msg(0, "{\"type\":\"chat\",\"text\":\"a\tb\"}"),
                       msg(0, "{\"type\":\"chat\",\"text\":\"a\x01b\"}")]);
seed('whitespace', [msg(0, " \t\r\n{ \"type\" : \"ping\" } \n")]);
single('single-ping', '{"type":"ping"}');
single('single-binary', "\x00\x01\xff\xfe{\"type\":\"ping\"}\xff");
single('single-big-text', '{"type":"chat","targetUserId":"bob","text":"'
                          . ('x' x 3000) . '"}');

# Redis up: results wait for PUBLISH's reply and the acks, in order
seed('redis-acks', [msg(0, '{"type":"chat","targetUserId":"bob",'
                           . '"text":"hi"}'),
                    published(0, 2), ack(0, 1), ack(0, 3)],
     settings => ['redis']);
seed('redis-order', [msg(0, '{"type":"notification",'
                            . '"targetUserId":"carol"}'),
                     msg(0, '{"type":"chat","targetUserId":"bob"}'),
                     msg(0, '{"type":"ping"}'),
                     published(1, 0), published(0, 1), ack(0, 2)],
     settings => ['redis']);
seed('redis-timeout', [msg(1, '{"type":"chat","targetUserId":"alice"}'),
                       published(0, 3), ack(0, 1), timeout(),
                       ack(0, 1)],
     settings => ['redis']);
seed('redis-no-reply', [msg(0, '{"type":"chat","targetUserId":"bob"}'),
                        msg(0, '{"type":"chat","targetUserId":"bob"}'),
                        timeout(), published(0, 1)],
     settings => ['redis']);
seed('redis-failed', [msg(0, '{"type":"notification",'
                             . '"targetUserId":"bob"}'),
                      published(0, -2), ack(0, 5)],
     settings => ['redis']);
seed('redis-closed', [msg(3, '{"type":"chat","targetUserId":"bob"}'),
                      msg(3, '{"type":"chat","targetUserId":"alice"}'),
                      published(1, 0), reopen(3), published(0, 0),
                      msg(3, '{"type":"ping"}')],
     settings => ['redis']);
seed('redis-stale-ack', [msg(0, '{"type":"chat","targetUserId":"bob"}'),
                         published(0, 0), ack(0, 1), ack(7, 7)],
     settings => ['redis']);

# connections that come and go
seed('reopen', [msg(1, '{"type":"register","userId":"carol"}'),
                reopen(2), reopen(0),
                msg(0, '{"type":"chat","targetUserId":"carol","text":"x"}'),
                msg(3, '{"type":"register","userId":"carol"}'),
                reopen(1)]);
seed('users-churn', [msg(3, '{"type":"register","userId":"alice"}'),
                     msg(0, '{"type":"register","userId":"dave"}'),
                     msg(3, '{"type":"register","userId":"dave"}'),
                     msg(1, '{"type":"register","userId":"dave"}'),
                     msg(2, '{"type":"register","userId":"dave"}'),
                     msg(0, '{"type":"notification",'
                            . '"targetUserId":"dave"}')]);

# ws_relay_max_connections 3: connection 3 is refused until one closes
seed('capacity', [msg(3, '{"type":"ping"}'), reopen(3),
                  msg(0, '{"type":"chat","targetUserId":"bob"}'),
                  reopen(0), reopen(3), msg(3, '{"type":"ping"}'),
                  msg(3, '{"type":"register","userId":"carol"}'),
                  reopen(1)],
     settings => ['capacity', 'fixed0']);

# an identity of 256 bytes with quotes, a backslash, control characters
# and UTF-8 in it (router_fuzz.c): written escaped wherever it goes
my $odd = "\"q\\\x01\x7f\xc3\xa9\xe4\xb8\xad\xf0\x9f\x98\x80\t" . ('x' x 241);
(my $odd_json = $odd) =~ s/(["\\])/\\$1/g;
$odd_json =~ s/\x01/\\u0001/g;
$odd_json =~ s/\t/\\t/g;
seed('odd-user-id', [msg(3, '{"type":"chat","text":"x"}'),
                     msg(3, '{"type":"register","userId":"carol"}'),
                     msg(3, '{"type":"register","userId":"' . $odd_json
                            . '"}'),
                     msg(0, '{"type":"notification","targetUserId":"'
                            . $odd_json . '"}'),
                     msg(3, '{"type":"chat","targetUserId":"alice"}')],
     settings => ['odd_id']);

# allocations that fail, at a few points
for my $n (1, 3, 8, 20, 60, 150) {
    seed("fail-$n", [msg(0, '{"type":"chat","targetUserId":"bob",'
                            . '"text":"hi"}'),
                     msg(3, '{"type":"register","userId":"erin"}'),
                     msg(3, '{"type":"notification",'
                            . '"targetUserId":"alice"}'),
                     msg(0, '{"type":"x"}')],
         settings => ['fail', ($n > 20 ? 'redis' : ())], fail => $n);
}
