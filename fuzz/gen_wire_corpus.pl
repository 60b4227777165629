#!/usr/bin/perl

# Writes the seed corpus of wire_fuzz: the bus's messages and channels,
# good and malformed, and what Redis pushes to a subscriber, followed by
# fields for the round trips (see wire_fuzz.c).
#
#   perl gen_wire_corpus.pl [dir]       default dir: corpus/wire

use strict;
use warnings;
use File::Path qw(make_path);

my $dir = shift // 'corpus/wire';

my $node = 'host-4242-1a2b3c';

sub bulk { my ($s) = @_; return '$' . length($s) . "\r\n$s\r\n" }
sub arr { return '*' . scalar(@_) . "\r\n" . join '', @_ }
sub int_ { my ($n) = @_; return ":$n\r\n" }
sub field { my ($s) = @_; return chr(length $s) . $s }

my %seen;

sub seed {
    my ($name, $data) = @_;

    die "duplicate seed $name\n" if $seen{$name}++;

    open my $fh, '>:raw', "$dir/$name" or die "$dir/$name: $!\n";
    print $fh $data;
    close $fh;
}

make_path($dir);

# messages, whole inputs
seed('user', "$node 17 {\"type\":\"chat\"}");
seed('user-empty-text', "$node 0 ");
seed('user-max-id', "a 18446744073709551615 x");
seed('user-id-overflow', "a 18446744073709551616 x");
seed('user-no-origin', ' 1 {}');
seed('user-no-space', 'a 1');
seed('user-two-spaces', 'a  1 {}');
seed('user-bad-id', 'a 1x {}');
# kept in the history: "<origin> <delivery id>:<history id> <JSON>"
seed('user-hid', "$node 17:1733600000000-0 {\"type\":\"chat\"}");
seed('user-hid-max', 'a 1:' . ('9' x 20) . '-' . ('9' x 20) . ' {}');
seed('user-hid-too-long', 'a 1:' . ('1' x 42) . ' {}');
seed('user-hid-empty', 'a 1: {}');
seed('user-hid-dashes', 'a 1:--- {}');
seed('user-hid-letter', 'a 1:17-0x {}');
seed('user-hid-no-space', 'a 1:17-0');
seed('user-hid-colon', 'a 1:17:0 {}');
seed('ack', 'ack:1:2');
seed('ack-max', 'ack:18446744073709551615:18446744073709551615');
seed('ack-overflow', 'ack:1:18446744073709551616');
seed('ack-no-count', 'ack:1:');
seed('ack-no-id', 'ack::1');
seed('ack-trailing', 'ack:1:2 ');
seed('ping', 'ping:42');
seed('ping-empty', 'ping:');
seed('ping-trailing', 'ping:1:2');

# channels
seed('channel-user', 'ws_relay:u:bob');
seed('channel-node', "ws_relay:n:$node");
seed('channel-bare', 'u:bob');
seed('channel-no-name', 'ws_relay:u:');
seed('channel-other-prefix', 'ws_other:u:bob');
seed('channel-user-tag', 'ws_relay:u:{bob}');
seed('channel-user-tag-open', 'ws_relay:u:{bob');
seed('channel-user-tag-empty', 'ws_relay:u:{}');
seed('channel-user-tag-inner', 'u:{a}b}');
seed('channel-stream', 'ws_relay:h:{bob}');
seed('channel-meta', 'ws_relay:m:{bob}');

# a client's since, whole inputs
seed('since-zero', '0');
seed('since-ms', '1733600000000');
seed('since-id', '1733600000000-5');
seed('since-max', ('9' x 15) . '-' . ('9' x 15));
seed('since-16', '1' x 16);
seed('since-seq-16', '1-' . ('1' x 16));
seed('since-zeros', '007-01');
seed('since-dash', '-');
seed('since-trailing-dash', '1-');
seed('since-three', '1-2-3');
seed('since-space', '1 ');

# pushes, as Redis writes them
seed('push-message', arr(bulk('message'), bulk('ws_relay:u:bob'),
                         bulk("$node 1 {}")));
seed('push-subscribe', arr(bulk('subscribe'), bulk("ws_relay:n:$node"),
                           int_(1)));
seed('push-unsubscribe', arr(bulk('unsubscribe'), bulk('ws_relay:u:bob'),
                             int_(0)));
seed('push-odd', arr(bulk('message'), bulk('c')) . arr(int_(1), bulk('c'),
                 bulk('p')) . arr(bulk('message'), bulk('c'), int_(3))
                 . "+message\r\n" . arr(bulk('Message'), bulk('c'),
                 bulk('p')) . arr(bulk('message'), bulk('c'), bulk('p'),
                 bulk('q')) . arr(bulk('pmessage'), bulk('*'), bulk('c'),
                 bulk('p')) . "*-1\r\n" . arr());

# sharded pub/sub of a Redis Cluster, and what is not quite it
seed('push-smessage', arr(bulk('smessage'), bulk('ws_relay:u:{bob}'),
                          bulk("$node 1 {}")));
seed('push-ssubscribe', arr(bulk('ssubscribe'), bulk("ws_relay:n:$node"),
                            int_(1)));
seed('push-sunsubscribe', arr(bulk('sunsubscribe'), bulk('ws_relay:u:{bob}'),
                              int_(0)));
seed('push-sharded-odd', arr(bulk('smessage'), bulk('c'), int_(1))
                         . arr(bulk('smessag_'), bulk('c'), bulk('p'))
                         . arr(bulk('s'), bulk('c'), bulk('p'))
                         . arr(bulk(''), bulk('c'), bulk('p'))
                         . arr(bulk('sssubscribe'), bulk('c'), int_(1))
                         . arr(bulk('Ssubscribe'), bulk('c'), int_(1))
                         . arr(bulk('sunsubscribe'), bulk('c'))
                         . arr(bulk('punsubscribe'), bulk('c'), int_(0)));

# redirections of a Redis Cluster, good and malformed
seed('redirect-moved', "-MOVED 3999 127.0.0.1:6381\r\n");
seed('redirect-ask', "-ASK 16383 ::1:7000\r\n");
seed('redirect-odd', "-MOVED 0 :7000\r\n" . "-MOVED 16384 h:1\r\n"
                     . "-MOVED -1 h:1\r\n" . "-MOVED 1 h:0\r\n"
                     . "-MOVED 1 h:65536\r\n" . "-MOVED 1 h\r\n"
                     . "-MOVED 1\r\n" . "-MOVED \r\n" . "-ASK \r\n"
                     . "-ERR MOVED 1 h:1\r\n" . "+MOVED 1 h:1\r\n"
                     . "-MOVED  1 h:1\r\n" . "-MOVED 01 a b:+1\r\n"
                     . "-ASK 1 h:99999999999999999999\r\n"
                     . "-MOVED 1 h:007\r\n" . "-MOVED 1 h:\r\n");
seed('redirect-nested', arr(bulk('x'), "-MOVED 12 [::1]:6379\r\n",
                            arr("-ASK 1 h:1\r\n")));

# CLUSTER SLOTS: two masters, one with a replica, an empty host, a "?"
sub range_ { my ($first, $last, @nodes) = @_;
             return arr(int_($first), int_($last), @nodes) }
sub node_ { my ($host, $port, @rest) = @_;
            return arr(bulk($host), int_($port), map { bulk($_) } @rest) }
seed('slots', arr(range_(0, 5460, node_('127.0.0.1', 7000, 'id0'),
                         node_('127.0.0.1', 7003, 'id3')),
                  range_(5461, 16383, node_('', 7001, 'id1')),
                  range_(100, 100, node_('?', 7002))));
seed('slots-empty', arr());
seed('slots-many', arr(map { range_($_ * 1000, $_ * 1000 + 999,
                                    node_("10.0.0.$_", 7000 + $_)) } 0 .. 16));
# each malformed: not an array, a short range, a string slot, slots out
# of order or of range, a master that is no array; and masters without
# an address, skipped
seed('slots-odd', "+OK\r\n" . arr(bulk('x')) . arr(arr(int_(0), int_(1)))
                  . arr(arr(bulk('0'), int_(1), node_('h', 1)))
                  . arr(range_(2, 1, node_('h', 1)))
                  . arr(range_(0, 16384, node_('h', 1)))
                  . arr(range_(-1, 1, node_('h', 1)))
                  . arr(arr(int_(0), int_(1), bulk('h')))
                  . arr(range_(0, 1, arr(bulk('h'))),
                        range_(0, 1, arr(bulk('h'), bulk('1'))),
                        range_(0, 1, arr(int_(1), int_(1))),
                        range_(0, 1, node_('h', 0)),
                        range_(0, 1, node_('h', 65536)),
                        range_(16383, 16383, node_('h', 65535))));

# keys and their hash tags, whole inputs
seed('slot-tag', 'foo{bar}{zap}');
seed('slot-tag-empty', '{}foo');
seed('slot-tag-open', '{bar');
seed('slot-tag-nested', 'foo{{bar}}zap');
seed('slot-catalogue', '123456789');

# the round trips' fields: id, count, origin, text, prefix, name, parts
seed('fields', ("\x00" x 7) . "\x01" . ("\xff" x 8) . field($node)
               . field('{"type":"chat"}') . field('ws_relay:')
               . field('bob') . "\x03" . field('a') . field(' 1 ')
               . field('{}') . "\x01" . field('ack:1:1'));
# and then: a command's arguments; three ids (0-1 a since, 2 two numbers
# with leading zeros, 3 any bytes); an object and an id for id_text
my $sha = 'a' x 40;
seed('fields-history', ("\x00" x 7) . "\x2a" . ("\x00" x 6) . "\x01\x02"
                       . field($node) . field('{"type":"chat"}')
                       . field('ws_relay:') . field('bob') . "\x00" x 4
                       . chr(13) . join('', map { field($_) }
                           'EVALSHA', $sha, '2', 'ws_relay:h:{bob}',
                           'ws_relay:m:{bob}', 'p', '86400000', '100',
                           '604800000', 'ws_relay:u:{bob}', "$node 1:",
                           "{\"a\":\"\r\n\"}", '')
                       . "\x00" . field('1733600000000-5')
                       . "\x01" . field('17')
                       . "\x22" . ("\x00" x 7) . "\x11" . ("\x00" x 8)
                       . field('{"type":"chat","text":"x"}')
                       . field('1733600000000-0'));
seed('fields-ids', ("\x00" x 16) . field('o') . field('') . field('')
                   . field('') . "\x00" x 4 . "\x00"
                   . "\x03" . field('9-9-9') . "\x03" . field('0017-5')
                   . "\x03" . field('') . field('{"a":1}') . field('"}'));
# stream ids and what is not one (_id_valid()): ids of 20-digit parts,
# of 21, quotes, backslashes, control characters, dashes, spaces
seed('fields-stream-ids', ("\x00" x 16) . field('o') . field('') . field('')
                          . field('') . "\x00" x 4 . "\x00"
                          . "\x03" . field('9' x 20 . '-' . '9' x 20)
                          . "\x03" . field('9' x 21 . '-1')
                          . "\x03" . field('1-' . '0' x 21));
seed('fields-bad-ids', ("\x00" x 16) . field('o') . field('') . field('')
                       . field('') . "\x00" x 4 . "\x00"
                       . "\x03" . field('1-2"') . "\x03" . field("1-2\\")
                       . "\x03" . field("1-\x01") . field('{"a":1}')
                       . field('1-2"}'));
seed('fields-odd-ids', ("\x00" x 16) . field('o') . field('') . field('')
                       . field('') . "\x00" x 4 . "\x00"
                       . "\x03" . field('-1') . "\x03" . field('1-')
                       . "\x03" . field(' 1-1'));
seed('fields-command-empty', ("\x00" x 16) . field('o') . field('')
                             . field('') . field('') . "\x00" x 4
                             . "\x01" . field(''));
seed('fields-spaces', "\x01\x02\x03\x04\x05\x06\x07\x08" . ("\x00" x 8)
                      . field('a b') . field('') . field("p\x00")
                      . field('') . "\x00" . "\x04" . field('') x 4);
# sharded PUBLISH (bit 7 of each kind's count of parts), a name with a
# "}" in it, one that begins with "}", and a prefix with a "{"
seed('fields-sharded', ("\x00" x 7) . "\x01" . ("\x00" x 7) . "\x02"
                       . field($node) . field('{"type":"chat"}')
                       . field('ws_relay:') . field('bob}x')
                       . "\x83" . field('a') . field(' 1 ') . field('{}')
                       . "\x80" . "\x81" . field('ack:1:1') . "\x84"
                       . field('') x 4);
seed('fields-tag-close', ("\x00" x 16) . field('o') . field('')
                         . field('p') . field('}bob') . "\x80" x 4);
seed('fields-tag-prefix', ("\x00" x 16) . field('o') . field('')
                          . field('{p}') . field('bob') . "\x80" x 4);
