#!/usr/bin/perl

# Writes the seed corpus of resp_fuzz: the conversations a worker has with
# Redis (connecting, subscribing, deliveries and their acks, messages for
# its users, presence, pings, errors, links lost and timed out) and replies
# it does not expect.  Each file is a settings byte and steps (see
# resp_fuzz.c); replies are RESP, as Redis sends them.
#
#   perl gen_resp_corpus.pl [dir]       default dir: corpus/resp

use strict;
use warnings;
use File::Path qw(make_path);

my $dir = shift // 'corpus/resp';

# settings bits of resp_fuzz.c
my %set = (password => 0x01, db => 0x02, unix => 0x04, fail => 0x20,
           ready => 0x40);
my @prefixes = ('ws_relay:', '', 'p', 'a:b:');

my $node = 'host-4242-1a2b3c';

# RESP
sub bulk { my ($s) = @_; return '$' . length($s) . "\r\n$s\r\n" }
sub arr { return '*' . scalar(@_) . "\r\n" . join '', @_ }
sub int_ { my ($n) = @_; return ":$n\r\n" }
sub ok { return "+OK\r\n" }
sub err { my ($s) = @_; return "-$s\r\n" }
sub nil { return "\$-1\r\n" }
sub push_ { my ($type, $channel, $payload) = @_;
            return arr(bulk($type), bulk($channel), bulk($payload)) }
sub confirm { my ($type, $channel, $n) = @_;
              return arr(bulk($type), bulk($channel), int_($n)) }

# steps
sub cmd { return "\x00" . $_[0] }
sub sub_ { return "\x01" . $_[0] }
sub direct_message { return "\x02" . $_[0] }
sub direct_publish { my ($k, $r) = @_; return chr(3 | $k << 3) . $r }
sub direct_ready { return chr(4 | 8) . $_[0] }
sub direct_generic { return chr(4) . $_[0] }
sub action { my ($a, $b) = @_; return chr(5 | $a << 3 | ($b // 0) << 6) }
sub user { my ($conn, $r) = @_; return chr(6 | $conn << 3) . $r }

sub deliver { my ($user) = @_;
              my %u = (alice => 0, bob => 1, carol => 2, zed => 3);
              return action(0, $u{$user}) }
sub presence { return action(1) }
sub wait_ { my %ms = (100 => 0, 600 => 1, 5000 => 2, 30000 => 3);
            return action(2, $ms{$_[0]}) }
sub connects { my ($link) = @_; return action(3, $link eq 'sub' ? 1 : 0) }
sub fails { my ($link) = @_; return action(4, $link eq 'sub' ? 1 : 0) }
sub next_connect { my %how = (refused => 0, nomem => 1, attach => 2);
                   return action(5, $how{$_[0]}) }
sub write_fails { return action(5, 3) }
sub reopen { return action(6, $_[0]) }
sub bye { return action(7) }

sub node_channel { my ($prefix) = @_; return ($prefix // 'ws_relay:') . "n:$node" }
sub user_channel { my ($user, $prefix) = @_;
                   return ($prefix // 'ws_relay:') . "u:$user" }

# what the commands link waits for once ready: DEL, SADD (the users),
# ZADD, PEXPIRE, ZREMRANGEBYSCORE
my @ready_replies = (cmd(int_(1)), cmd(int_(2)), cmd(int_(1)), cmd(int_(1)),
                     cmd(int_(0)));

my %seen;

# seed($name, [steps], settings => [names], prefix => index, fail => n)
sub seed {
    my ($name, $steps, %o) = @_;
    my $settings = 0;
    $settings |= $set{$_} for @{ $o{settings} // [] };
    $settings |= ($o{prefix} // 0) << 3;

    my $data = chr $settings;
    $data .= chr($o{fail} - 1) if $settings & $set{fail};
    $data .= join '', @$steps;

    die "duplicate seed $name\n" if $seen{$name}++;

    open my $fh, '>:raw', "$dir/$name" or die "$dir/$name: $!\n";
    print $fh $data;
    close $fh;
}

make_path($dir);

# connection 0 is alice, 1 and 2 are bob, 3 has no user (resp_fuzz.c)

# connecting, as Redis answers
seed('connect', [cmd(ok()), cmd(ok()), cmd("+PONG\r\n"), sub_(ok()),
                 sub_(confirm('subscribe', node_channel(), 1)),
                 @ready_replies,
                 sub_(confirm('subscribe', user_channel('alice'), 2)),
                 sub_(confirm('subscribe', user_channel('bob'), 3))],
     settings => ['password', 'db']);
seed('connect-plain', [cmd("+PONG\r\n"),
                       sub_(confirm('subscribe', node_channel(), 1)),
                       @ready_replies]);
seed('connect-unix', [connects('cmd'), connects('sub'), cmd("+PONG\r\n"),
                      sub_(confirm('subscribe', node_channel(), 1))],
     settings => ['unix']);
seed('connect-auth-error', [cmd(err('WRONGPASS invalid password')),
                            cmd("+PONG\r\n"),
                            sub_(err('NOAUTH Authentication required.')),
                            sub_(confirm('subscribe', node_channel(), 1))],
     settings => ['password']);
seed('connect-ping-error', [cmd(err('LOADING Redis is loading')),
                            wait_(600), wait_(600), cmd("+PONG\r\n")]);
seed('connect-refused', [fails('cmd'), fails('sub'), wait_(600),
                         next_connect('refused'), wait_(5000),
                         next_connect('nomem'), wait_(5000),
                         next_connect('attach'), wait_(5000),
                         wait_(30000), cmd("+PONG\r\n")]);
seed('connect-timeout', [wait_(5000), wait_(5000), wait_(30000),
                         cmd("+PONG\r\n")]);
seed('subscribe-other', [cmd("+PONG\r\n"),
                         sub_(confirm('subscribe', 'ws_relay:n:other', 1)),
                         sub_(confirm('subscribe', node_channel(), 1)),
                         sub_(confirm('subscribe', node_channel(), 1))]);

for my $i (1 .. 3) {
    my $p = $prefixes[$i];
    seed("prefix-$i", [deliver('bob'), @ready_replies, cmd(int_(2)),
                       sub_(push_('message', node_channel($p), 'ack:1:1')),
                       sub_(push_('message', node_channel($p), 'ack:1:2')),
                       sub_(push_('message', user_channel('alice', $p),
                                  'other 5 {"type":"chat"}'))],
         settings => ['ready'], prefix => $i);
}

# deliveries: PUBLISH's reply, then the acks of the other workers
seed('delivery', [deliver('bob'), @ready_replies, cmd(int_(2)),
                  sub_(push_('message', node_channel(), 'ack:1:3')),
                  sub_(push_('message', node_channel(), 'ack:1:0'))],
     settings => ['ready']);
seed('delivery-own', [deliver('alice'), @ready_replies, cmd(int_(1)),
                      sub_(push_('message', user_channel('alice'),
                                 "$node 1 {\"type\":\"chat\"}"))],
     settings => ['ready']);
seed('delivery-timeout', [deliver('carol'), deliver('bob'), @ready_replies,
                          cmd(int_(3)), cmd(int_(1)),
                          sub_(push_('message', node_channel(), 'ack:2:1')),
                          wait_(600),
                          sub_(push_('message', node_channel(), 'ack:1:1'))],
     settings => ['ready']);
seed('delivery-publish-replies', [deliver('bob'), deliver('bob'),
                                  deliver('zed'), deliver('alice'),
                                  deliver('bob'), @ready_replies,
                                  cmd(err('ERR wrong')), cmd(nil()),
                                  cmd(arr(int_(1))), cmd(int_(-5)),
                                  cmd(int_('9223372036854775807'))],
     settings => ['ready']);
seed('delivery-down', [deliver('bob'), deliver('zed'), cmd("+PONG\r\n"),
                       deliver('alice')]);
seed('delivery-lost', [deliver('bob'), deliver('alice'), fails('cmd'),
                       deliver('bob'), wait_(600)],
     settings => ['ready']);
seed('delivery-stalled', [deliver('bob'), wait_(600), wait_(5000),
                          wait_(5000), cmd("+PONG\r\n")],
     settings => ['ready']);
seed('delivery-direct', [deliver('bob'), deliver('alice'),
                         direct_publish(0, int_(0)),
                         direct_publish(1, err('ERR x')),
                         direct_publish(1, int_(4)), @ready_replies,
                         cmd(int_(1)), cmd(int_(1))],
     settings => ['ready']);

# messages for users of this worker, and for the node
seed('user-message', [sub_(push_('message', user_channel('bob'),
                                 'other-node 77 {"type":"chat","text":"hi"}')),
                      @ready_replies, cmd(int_(0)),
                      sub_(push_('message', user_channel('nobody'),
                                 'other-node 78 {}')),
                      sub_(push_('message', user_channel('alice'),
                                 "other 79 \xc0\x80 not JSON"))],
     settings => ['ready']);
seed('user-message-malformed', [
        map { sub_(push_('message', user_channel('bob'), $_)) }
            ('nospace', 'origin 12', 'origin  json', 'origin 1x2 {}',
             'origin -1 {}', '', ' 1 {}', 'a 1 ', 'a 1  ',
             'a 99999999999999999999999999 {}', "a\x001 2 {}")],
     settings => ['ready']);
seed('node-messages', [
        map { sub_(push_('message', node_channel(), $_)) }
            ('ack:', 'ack:1', 'ack:1:', 'ack::1', 'ack:1:2:3', 'ack:1:2x',
             'ack:18446744073709551617:1', 'ack:1:18446744073709551616',
             'ping:1', 'ping:', 'ping:x', 'pong:1', 'ACK:1:1', 'ack')],
     settings => ['ready']);
seed('ping', [@ready_replies, wait_(600), cmd(int_(1)),
              sub_(push_('message', node_channel(), 'ping:1')),
              wait_(600), wait_(600), cmd(int_(1)), wait_(5000)],
     settings => ['ready']);
seed('lease', [@ready_replies, wait_(5000), wait_(5000), wait_(5000),
               cmd(int_(1)), cmd(int_(1)), cmd(int_(1)), cmd(int_(1))],
     settings => ['ready']);

# what the subscriber link may hear besides
seed('subscriber-pushes', [
        sub_(confirm('unsubscribe', user_channel('bob'), 0)),
        sub_(confirm('unsubscribe', node_channel(), 0)),
        sub_(confirm('subscribe', user_channel('zed'), 3)),
        sub_(arr(bulk('pmessage'), bulk('*'), bulk(node_channel()),
                 bulk('ack:1:1'))),
        sub_(arr(bulk('message'), bulk(node_channel()))),
        sub_(arr(bulk('message'))),
        sub_(arr(bulk('message'), int_(1), bulk('x'))),
        sub_(arr(bulk('message'), bulk(node_channel()), int_(1))),
        sub_(arr(bulk('message'), bulk(node_channel()), nil())),
        sub_(arr(bulk('message'), bulk(node_channel()),
                 arr(bulk('ack:1:1')))),
        sub_(arr()), sub_("*-1\r\n"), sub_(int_(3)), sub_(ok()),
        sub_(err('ERR unknown command')), sub_(nil())],
     settings => ['ready']);
seed('direct-messages', [
        direct_message(int_(1)), direct_message(nil()),
        direct_message(arr(bulk('subscribe'), bulk(node_channel()),
                           int_(1))),
        direct_message(arr(bulk('message'), bulk(node_channel()),
                           bulk('ack:1:1'))),
        direct_message(arr(nil(), nil(), nil())),
        direct_message(arr(bulk('message'), bulk(user_channel('bob')),
                           bulk('x 1 {}'))),
        direct_message(err('ERR'))]);
seed('direct-replies', [direct_ready(err('ERR not ready')), wait_(600),
                        direct_ready(ok()), direct_generic(err('ERR x')),
                        direct_generic(nil()), direct_generic(arr())]);
seed('spontaneous', [@ready_replies, cmd(int_(1)), cmd(err('ERR max clients')),
                     wait_(600), cmd("+PONG\r\n")],
     settings => ['ready']);

# presence: the nodes with a lease, then each one's users
seed('presence', [@ready_replies, presence(),
                  cmd(arr(bulk($node), bulk('other-1-2'))),
                  cmd(arr(bulk('alice'), bulk('bob'))),
                  cmd(arr(bulk('carol')))],
     settings => ['ready']);
seed('presence-empty', [@ready_replies, presence(), cmd(arr()), presence(),
                        cmd("*-1\r\n")],
     settings => ['ready']);
seed('presence-errors', [@ready_replies, presence(),
                         cmd(err('ERR wrong')), presence(),
                         cmd(arr(bulk('a'), bulk('b'))), cmd(nil()),
                         cmd(arr()), presence(),
                         cmd(arr(bulk('a'))), cmd(err('WRONGTYPE'))],
     settings => ['ready']);
seed('presence-odd', [@ready_replies, presence(),
                      cmd(arr(int_(1), bulk('a'), nil(), arr(bulk('b')),
                              bulk('a'), bulk('n' x 300), bulk(''))),
                      cmd(arr(bulk('u1'), int_(2), bulk("\xc0"),
                              bulk("u\x00"))),
                      cmd(arr(bulk('u2'))), cmd(arr()), cmd(arr())],
     settings => ['ready']);
seed('presence-lost', [@ready_replies, presence(),
                       cmd(arr(bulk('a'), bulk('b'))), cmd(arr()),
                       fails('cmd'), presence()],
     settings => ['ready']);
seed('presence-down', [presence(), cmd("+PONG\r\n"), presence(), bye()]);

# users that come and go
seed('users', [user(3, bulk('dave')), @ready_replies,
               sub_(confirm('subscribe', user_channel('dave'), 3)),
               user(0, bulk('dave')), user(1, "+bob\r\n"), reopen(2),
               reopen(1), user(3, bulk('a b:c')), user(3, bulk('x' x 256)),
               user(3, bulk("\x00\xff")), user(3, bulk('')), user(3, nil())],
     settings => ['ready']);
seed('users-resync', [user(3, bulk('dave')), fails('sub'), user(0,
                      bulk('erin')), wait_(600), wait_(600),
                      sub_(confirm('subscribe', node_channel(), 1)),
                      reopen(3), fails('cmd'), wait_(600), wait_(600),
                      cmd("+PONG\r\n")],
     settings => ['ready']);

seed('users-write-fails', [write_fails(), user(3, bulk('dave')),
                           user(0, bulk('erin')), wait_(600), wait_(600),
                           sub_(confirm('subscribe', node_channel(), 1)),
                           sub_(confirm('subscribe', user_channel('dave'),
                                        2))],
     settings => ['ready']);

# links that fail: the replies still due get none
seed('lost', [deliver('bob'), presence(), user(3, bulk('dave')),
              fails('cmd'), fails('sub'), wait_(100), wait_(600),
              connects('cmd'), connects('sub'), cmd("+PONG\r\n"),
              sub_(confirm('subscribe', node_channel(), 1))],
     settings => ['ready']);
seed('protocol-error', [@ready_replies, cmd("?what\r\n")],
     settings => ['ready']);
seed('protocol-error-sub', [sub_("*2\r\n\$3\r\nabc\r\n!\r\n")],
     settings => ['ready']);
seed('big-counts', [cmd("*2147483647\r\n"), sub_("\$2147483647\r\n")]);
seed('nested', [cmd(arr(arr(arr(arr(arr(arr(arr(int_(1)))))))) .
                    "\x00" . ('*1' . "\r\n") x 9 . int_(1))],
     settings => ['ready']);
seed('exit', [deliver('bob'), presence(), @ready_replies, bye(),
              cmd(int_(1))],
     settings => ['ready']);

# allocations that fail, at a few points
for my $n (1, 4, 10, 30, 80, 200) {
    seed("fail-$n", [deliver('bob'), user(3, bulk('dave')), @ready_replies,
                     cmd(int_(1)), presence(), cmd(arr(bulk($node))),
                     cmd(arr(bulk('alice'))),
                     sub_(push_('message', user_channel('bob'),
                                'other 9 {}')),
                     sub_(push_('message', node_channel(), 'ack:1:1')),
                     wait_(5000)],
         settings => ['ready', 'fail'], fail => $n);
}
