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

# the round trips' fields: id, count, origin, text, prefix, name, parts
seed('fields', ("\x00" x 7) . "\x01" . ("\xff" x 8) . field($node)
               . field('{"type":"chat"}') . field('ws_relay:')
               . field('bob') . "\x03" . field('a') . field(' 1 ')
               . field('{}') . "\x01" . field('ack:1:1'));
seed('fields-spaces', "\x01\x02\x03\x04\x05\x06\x07\x08" . ("\x00" x 8)
                      . field('a b') . field('') . field("p\x00")
                      . field('') . "\x00" . "\x04" . field('') x 4);
