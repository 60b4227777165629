#!/usr/bin/perl

# Writes the seed corpus of router_fuzz: every client message of the wire
# protocol, valid and not, edge cases of JSON as JSON.parse() reads it
# (nesting up to 1000 levels, numbers beyond a double, -0, 0e5, 1.50,
# duplicate names, \u0000, lone surrogates, escaped names and types,
# invalid UTF-8), falsy fields, types that String() names, and sequences
# with Redis up (PUBLISH replies, acks, timeouts), closed connections and
# failed allocations; and the history: register and resume with a since,
# good and hostile, in locations with and without ws_relay_history, the
# waits for a user's channel (and the messages that wait meanwhile),
# pages of replay {recovered, more, newest id, ...} (and replies of any
# shape, ids that are no stream ids), the newest id ("t"), held messages,
# kept deliveries and their script's replies and publications, and the
# catch-up after the subscriber link came back.
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

# a new connection in location $loc (0 no history, 1 history, 2 with
# resume_unverified=on, 3 that with a send buffer of 256) as $who
my %who = (nobody => 0, alice => 1, bob => 2, carol => 3,
           'alice-register' => 4, 'bob-register' => 5);
sub reopen_at { my ($conn, $loc, $who) = @_;
                return chr(7 << 2 | 0x20 | $loc << 6 | $conn)
                       . chr($who{$who}) }

# the history's events (router_fuzz.c)
sub hev { my ($conn, $ev, $payload) = @_;
          return chr(6 << 2 | 0x20 | $ev << 6 | $conn) . ($payload // '') }
sub heard { return hev($_[0], 0) }
sub field { my ($s) = @_; return chr(length $s) . $s }
# a page: recovered, more, then entries [id, json]: id 'next', 'since',
# 'before' or bytes; json 'msg', 'array', ['long', kb] or bytes; its
# newest id the stream's (or with page_top: 'stream', 'zero', 'quote' or
# bytes); an ask for the newest id gets that id alone
sub page { my ($recovered, $more, @entries) = @_;
           return page_top($recovered, $more, 'stream', @entries) }
sub page_top {
    my ($recovered, $more, $top, @entries) = @_;
    my %tops = (stream => 0, zero => 1, quote => 3);
    my $t = $tops{$top} // 2;
    my $data = chr(($recovered ? 1 : 0) | ($more ? 2 : 0) | $t << 2);
    $data .= field($top) if $t == 2;
    for my $e (@entries) {
        my ($id, $json) = @$e;
        my %ids = (next => 0, since => 1, before => 3);
        my $s = $ids{$id} // 2;
        my ($j, $kb) = (ref $json ? @$json : ($json));
        my %jsons = (msg => 0, array => 2, long => 3);
        my $js = $jsons{$j} // 1;
        $data .= chr($s | $js << 2 | ($kb // 0) << 4);
        $data .= field($id) if $s == 2;
        $data .= field($j) if $js == 1;
    }
    return hev(0, 1, $data);
}
sub raw_page { return hev(0, 2, $_[0]) }
sub sub_lost { return hev(0, 3, "\x00") }
sub sub_back { return hev(0, 3, "\x01") }
sub stored { my ($k, $n, $id) = @_;
             return hev(0, 3, "\x02" . chr($k) . chr($n & 0xff)
                              . ($id // '')) }
sub unstored { return hev(0, 3, "\x03" . chr($_[0])) }
sub echo { return hev(0, 3, "\x04" . chr($_[0])) }
sub wait_channel { return hev(0, 3, "\x05") }

# RESP
sub bulk { my ($s) = @_; return '$' . length($s) . "\r\n$s\r\n" }
sub arr { return '*' . scalar(@_) . "\r\n" . join '', @_ }
sub int_ { my ($n) = @_; return ":$n\r\n" }
sub err { my ($s) = @_; return "-$s\r\n" }
sub nil { return "\$-1\r\n" }

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

# a since without history: answered, recovered false; resume unknown
seed('since-no-history', [msg(3, '{"type":"register","userId":"carol",'
                                 . '"since":"17"}'),
                          msg(3, '{"type":"register","userId":"carol",'
                                 . '"since":"1733600000000-5"}'),
                          msg(0, '{"type":"resume","since":"0"}'),
                          msg(3, '{"type":"resume"}')]);
seed('since-hostile', [map { msg(3, '{"type":"register","userId":"carol",'
                                    . '"since":' . $_ . '}') }
                           ('"abc"', '17', 'null', '""', '"-"', '"1-"',
                            '"-1"', '"1-2-3"', '"1234567890123456"',
                            '"1-1234567890123456"', '"123456789012345-'
                            . '123456789012345"', '" 1"', '"1 "', '"+1"',
                            '"1.5"', '"0x1"', '"\\u0031\\u0037"',
                            '"' . ('\\u0031' x 8) . '"', '"1\\u0000"',
                            '"\\ud800"', '["1"]', '{"a":"1"}', 'false',
                            '"\xef\xbc\x91"', '"0"', '"000-000"')]);
seed('since-duplicate', [msg(3, '{"type":"register","userId":"carol",'
                                . '"since":"x","since":"5"}'),
                         msg(3, '{"type":"register","userId":"carol",'
                                . '"since":"5","since":7}'),
                         msg(3, '{"type":"register","\\u0073ince":"9",'
                                . '"userId":"carol"}')]);

# history: a connection of a user set by nginx joins as it opens, and is
# live once the worker hears the user's channel and knows the newest id of
# the user's history (asked for, "t", when it knows none: live(...))
sub live { my ($conn) = @_; return (heard($conn), page(0, 0)) }

# a register with a since: the reply waits for the channel, then for the
# page; then what came meanwhile
seed('history-register', [reopen_at(0, 2, 'nobody'),
                          msg(0, '{"type":"register","userId":"alice",'
                                 . '"since":"1733600000000"}'),
                          msg(1, '{"type":"chat","targetUserId":"alice",'
                                 . '"text":"while resuming"}'),
                          published(0, 1), ack(0, 1),
                          heard(0),
                          page(1, 0, ['next', 'msg'], ['next', 'msg'],
                               ['before', 'msg'])],
     settings => ['redis', 'fixed1']);
seed('history-resume', [reopen_at(0, 1, 'alice'), live(0),
                        msg(0, '{"type":"resume","since":"0"}'),
                        page(0, 1, ['next', 'msg'], ['since', 'msg']),
                        msg(0, '{"type":"resume","since":"5"}'),
                        msg(0, '{"type":"register","userId":"alice"}'),
                        page(1, 0, ['next', ['long', 3]], ['next', 'array'],
                             ['next', '{"a":1}'], ['next', '}'],
                             ['next', 'x}'], ['next', '{}'])],
     settings => ['redis']);
seed('history-unverified', [reopen_at(3, 2, 'alice-register'),
                            live(3),
                            msg(3, '{"type":"resume","since":"17-3"}'),
                            page(1, 0),
                            msg(3, '{"type":"register","userId":"carol",'
                                   . '"since":"1"}'),
                            wait_channel(),
                            msg(3, '{"type":"resume","since":"2"}'),
                            heard(3), raw_page(err('NOSCRIPT No matching '
                                                   . 'script.'))],
     settings => ['redis']);
seed('history-refused', [reopen_at(3, 1, 'alice-register'), live(3),
                         msg(3, '{"type":"register","userId":"alice",'
                                . '"since":"5"}'),
                         msg(3, '{"type":"resume","since":"5"}'),
                         msg(3, '{"type":"resume"}'),
                         msg(2, '{"type":"resume","since":"5"}'),
                         reopen_at(2, 1, 'nobody'),
                         msg(2, '{"type":"resume","since":"5"}')],
     settings => ['redis']);
seed('history-down', [reopen_at(0, 1, 'alice'),
                      msg(0, '{"type":"register","userId":"alice",'
                             . '"since":"5"}'),
                      msg(0, '{"type":"resume","since":"5"}'),
                      msg(0, '{"type":"chat","targetUserId":"bob"}')]);
seed('history-sub-lost', [reopen_at(0, 2, 'alice'), live(0), sub_lost(),
                          msg(0, '{"type":"resume","since":"5"}'),
                          sub_back(),
                          msg(0, '{"type":"resume","since":"5"}'),
                          heard(0), sub_lost(), page(1, 0, ['next', 'msg']),
                          msg(0, '{"type":"resume","since":"6"}'),
                          wait_channel()],
     settings => ['redis']);

# what the client sends while its connection joins waits, in order, and
# is read once it is live; then it may join again, and its next wait
seed('history-waiting', [reopen_at(0, 1, 'alice'),
                         msg(0, '{"type":"ping"}'),
                         msg(0, '{"type":"chat","targetUserId":"bob",'
                                . '"text":"waited"}'),
                         msg(0, '{"type":"register","userId":"alice"}'),
                         msg(0, '{"type":"resume","since":"7"}'),
                         msg(0, '{"type":"resume","since":"8"}'),
                         msg(0, '{"type":"register","userId":"alice",'
                                . '"since":"9"}'),
                         msg(0, '{"type":"ping"}'),
                         msg(1, '{"type":"chat","targetUserId":"alice",'
                                . '"text":"held"}'),
                         heard(0), page(0, 0),
                         page(1, 0, ['next', 'msg']),
                         page(1, 1, ['next', 'msg']),
                         timeout(), timeout(),
                         page(0, 0), page(1, 0),
                         reopen_at(2, 1, 'alice'),
                         reopen_at(3, 1, 'carol'),
                         msg(3, '{"type":"ping"}'), wait_channel()],
     settings => ['redis']);

# the newest id: the script's answer ("t") is taken if it is a stream id;
# one known already spares the question
seed('history-top', [(map { (reopen_at(0, 1, 'alice'), heard(0),
                             raw_page($_)) }
                          (bulk('1733600000000-3'), bulk('0-0'),
                           bulk('1-2"'), bulk('1-2"}'), bulk(''),
                           bulk('9' x 20 . '-' . '9' x 20),
                           bulk('9' x 21 . '-1'), bulk('1-2-3'), nil(),
                           err('NOSCRIPT No matching script.'), int_(5),
                           arr(bulk('1-1')), "+1-1\r\n", '')),
                     reopen_at(0, 1, 'alice'), heard(0),
                     page_top(0, 0, 'quote'),
                     reopen_at(0, 1, 'alice'), heard(0),
                     page_top(0, 0, '1733600000000-77'),
                     reopen_at(1, 1, 'alice'),
                     sub_lost(), sub_back(),
                     reopen_at(2, 1, 'alice'), heard(2),
                     page(1, 0, ['next', 'msg'])],
     settings => ['redis']);

# the subscriber link lost and back: the live connections catch up,
# unanswered, after the newest kept message each was sent (any user id),
# or, with none yet, after the newest id the worker heard when they may
# be replayed
seed('history-catch-up', [reopen_at(1, 1, 'bob'), live(1),
                          reopen_at(0, 1, 'alice'), live(0),
                          reopen_at(2, 1, 'alice-register'),
                          reopen_at(3, 2, 'alice-register'),
                          msg(1, '{"type":"chat","targetUserId":"alice",'
                                 . '"text":"heard"}'),
                          stored(0, 1), echo(0),
                          sub_lost(),
                          msg(1, '{"type":"chat","targetUserId":"alice",'
                                 . '"text":"missed"}'),
                          stored(0, 1),
                          msg(2, '{"type":"ping"}'),
                          sub_back(), heard(0),
                          page(1, 0, ['next', 'msg']),
                          page(1, 1, ['next', 'msg']),
                          msg(0, '{"type":"ping"}'),
                          page(1, 0), sub_lost(), sub_back(), heard(1),
                          page(1, 0)],
     settings => ['redis']);

# pages whose newest id is no stream id, or long ones
seed('history-page-newest', [reopen_at(0, 1, 'alice'), live(0),
                             (map { (msg(0, '{"type":"resume",'
                                            . '"since":"5"}'),
                                     page_top(1, 0, $_, ['next', 'msg'])) }
                                  ('zero', 'quote', '1-2"}', '',
                                   '9' x 20 . '-' . '9' x 20,
                                   '9' x 21 . '-1', '1-' . '9' x 21,
                                   "1-1\\", "1-1\x01", '1-2-3', '-1', '1-',
                                   '0001-0002'))],
     settings => ['redis']);

# ids that are no stream ids, in pages and in the script's replies: not
# taken, into no client's JSON
seed('history-bad-ids', [reopen_at(1, 1, 'bob'), live(1),
                         reopen_at(0, 1, 'alice'), live(0),
                         (map { (msg(0, '{"type":"resume","since":"5"}'),
                                 page(1, 0, ['next', 'msg'], [$_, 'msg'])) }
                              ('1-2"', '1-2"}', "1-1\\", "1-\x01", '1-2-3',
                               '1-', '-1', '9' x 21 . '-1', '1-2 ', '1',
                               '9' x 20 . '-' . '9' x 20)),
                         (map { (msg(1, '{"type":"chat","targetUserId":'
                                        . '"alice"}'),
                                 stored(0, 1, $_)) }
                              ('1"}', '1-2"', '1-2-3', ' 1-1', '1-1 ',
                               '9' x 21 . '-1', '9' x 20 . '-' . '9' x 20)),
                         msg(1, '{"type":"chat","targetUserId":"alice"}'),
                         echo(0), stored(0, 1, '1"}')],
     settings => ['redis']);

# the replay's replies: errors, no reply, shapes it does not take
seed('history-pages', [reopen_at(0, 1, 'alice'), live(0),
                       (map { (msg(0, '{"type":"resume","since":"5"}'),
                               raw_page($_)) }
                            (err('ERR wrong'), int_(1), "*-1\r\n", arr(),
                             arr(int_(1)), arr(int_(1), int_(0)),
                             arr(int_(1), int_(0), bulk('1-0'),
                                 bulk('2-0')),
                             arr(bulk('1'), int_(0), bulk('1-0')),
                             arr(int_(1), int_(0), int_(5), int_(5),
                                 bulk('{"a":1}')),
                             arr(int_(1), int_(0), bulk('1-0'), int_(5),
                                 bulk('{"a":1}')),
                             arr(int_(1), int_(0), bulk('1-0'),
                                 bulk('1' x 41), bulk('{"a":1}')),
                             arr(int_(1), int_(0), bulk('1-0'),
                                 bulk('9' x 40), bulk('{"a":1}')),
                             arr(int_(1), int_(1), bulk('1-0'), bulk('1-1'),
                                 bulk('{"a":1}'), bulk('1-2'), nil()),
                             arr(int_(1), int_(0), bulk('1-9'), bulk('1-1'),
                                 bulk('{"a":1}'), bulk('1-2'),
                                 bulk('{"b":2}')),
                             arr(int_(-1), int_(7), bulk('0-0')),
                             "+OK\r\n", nil(), "*2\r\n:1\r\n", '')),
                       msg(0, '{"type":"resume","since":"5"}')],
     settings => ['redis']);
seed('history-more', [reopen_at(0, 1, 'alice'), live(0),
                      msg(0, '{"type":"resume","since":"5"}'),
                      page(1, 1, ['next', 'msg'], ['next', 'msg']),
                      page(1, 1, ['next', 'msg']),
                      page(1, 1),
                      msg(0, '{"type":"resume","since":"5"}'),
                      page(0, 1, ['1-2-3', 'msg']),
                      page(0, 1, ['', 'msg']),
                      reopen_at(0, 1, 'alice'), page(1, 1, ['next', 'msg'])],
     settings => ['redis']);
seed('history-closed', [reopen_at(0, 1, 'alice'), live(0),
                        msg(0, '{"type":"resume","since":"5"}'),
                        reopen(0), page(1, 0, ['next', 'msg']),
                        reopen_at(3, 1, 'alice'),
                        msg(3, '{"type":"resume","since":"5"}'),
                        reopen(3), reopen_at(2, 1, 'carol'),
                        heard(2), reopen(2), page(0, 0)],
     settings => ['redis']);

# what comes live while joining is held, then sent without what the
# replay had; more than the send buffer closes the connection
seed('history-held', [reopen_at(0, 1, 'alice'), live(0),
                      msg(0, '{"type":"resume","since":"5"}'),
                      msg(1, '{"type":"chat","targetUserId":"alice",'
                             . '"text":"held 1"}'),
                      msg(2, '{"type":"notification",'
                             . '"targetUserId":"alice"}'),
                      heard(0), page(1, 0, ['next', 'msg'])]);
seed('history-held-joining', [reopen_at(0, 1, 'alice'),
                              msg(1, '{"type":"chat","targetUserId":'
                                     . '"alice","text":"held 1"}'),
                              msg(2, '{"type":"notification",'
                                     . '"targetUserId":"alice"}'),
                              heard(0), page(0, 0)]);
seed('history-overflow', [reopen_at(0, 3, 'alice'),
                          msg(0, '{"type":"resume","since":"5"}'),
                          (map { msg(1, '{"type":"chat","targetUserId":'
                                        . '"alice","text":"' . ('x' x 60)
                                        . '"}') } 1 .. 4),
                          heard(0), page(1, 0)]);

# kept deliveries: the script's reply, its publication, in either order
seed('history-stored', [reopen_at(1, 1, 'bob'), live(1),
                        reopen_at(0, 1, 'alice'), live(0),
                        msg(1, '{"type":"chat","targetUserId":"alice",'
                               . '"text":"kept"}'),
                        stored(0, 1), echo(0),
                        msg(1, '{"type":"notification",'
                               . '"targetUserId":"alice"}'),
                        echo(0), stored(0, 2, '1733600000099-7'),
                        ack(0, 3),
                        msg(1, '{"type":"chat","targetUserId":"nobody"}'),
                        stored(0, 0)],
     settings => ['redis']);
seed('history-unstored', [reopen_at(1, 1, 'bob'), live(1),
                          msg(1, '{"type":"chat","targetUserId":"alice",'
                                 . '"text":"x"}'),
                          unstored(0),
                          msg(1, '{"type":"notification",'
                                 . '"targetUserId":"alice"}'),
                          echo(0), unstored(0),
                          msg(1, '{"type":"chat","targetUserId":"bob"}'),
                          timeout(), stored(0, 1)],
     settings => ['redis']);
seed('history-stored-resuming', [reopen_at(1, 1, 'bob'), live(1),
                                  reopen_at(0, 1, 'alice'), live(0),
                                  msg(0, '{"type":"resume","since":'
                                         . '"1733600000001"}'),
                                  msg(1, '{"type":"chat",'
                                         . '"targetUserId":"alice"}'),
                                  stored(0, 1), echo(0),
                                  page(1, 0, ['next', 'msg'],
                                       ['next', 'msg'])],
     settings => ['redis']);
# a connection is sent a kept message once: the replay had it, the held
# or live copy is dropped (and counts); a since asked for sets where it
# is, another user starts anew
seed('history-copies', [reopen_at(1, 1, 'bob'), live(1),
                        reopen_at(0, 1, 'alice'), live(0),
                        msg(0, '{"type":"resume","since":"5"}'),
                        msg(1, '{"type":"chat","targetUserId":"alice"}'),
                        stored(0, 1), echo(0),
                        page(1, 0, ['1733600000001-0', 'msg'],
                             ['next', 'msg']),
                        msg(0, '{"type":"resume",'
                               . '"since":"1733600000099"}'),
                        page(1, 0, ['1733600000050-0', 'msg'],
                             ['1733600000100-0', 'msg']),
                        msg(1, '{"type":"chat","targetUserId":"alice"}'),
                        stored(0, 1, '1733600000050-0'), echo(0),
                        msg(1, '{"type":"notification",'
                               . '"targetUserId":"alice"}'),
                        stored(0, 1, '1733600000200-0'), echo(0),
                        reopen_at(3, 2, 'alice-register'),
                        msg(3, '{"type":"resume",'
                               . '"since":"1733600000300"}'),
                        page(1, 0),
                        msg(3, '{"type":"register","userId":"carol"}'),
                        msg(3, '{"type":"register","userId":"alice"}'),
                        msg(1, '{"type":"chat","targetUserId":"alice"}'),
                        stored(0, 1, '1733600000250-0'), echo(0)],
     settings => ['redis']);
seed('history-stored-sub-down', [reopen_at(1, 1, 'bob'), live(1),
                                  sub_lost(),
                                  msg(1, '{"type":"chat",'
                                         . '"targetUserId":"alice"}'),
                                  stored(0, 0), sub_back(),
                                  msg(1, '{"type":"chat",'
                                         . '"targetUserId":"bob"}'),
                                  stored(0, 3), echo(0)],
     settings => ['redis']);

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

for my $n (2, 10, 40, 90) {
    seed("fail-history-$n", [reopen_at(0, 1, 'alice'), live(0),
                             msg(0, '{"type":"resume","since":"5"}'),
                             msg(1, '{"type":"chat","targetUserId":"alice"}'),
                             page(1, 0, ['next', 'msg']),
                             reopen_at(1, 1, 'bob'), live(1),
                             msg(1, '{"type":"chat",'
                                    . '"targetUserId":"alice"}'),
                             stored(0, 1), echo(0)],
         settings => ['fail', 'redis'], fail => $n);
}
