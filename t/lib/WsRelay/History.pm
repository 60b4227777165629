package WsRelay::History;

# Tools for the suites of ws_relay_history (t/016, t/017), beside
# WsRelay::Test, WsRelay::Redis and WsRelay::Api:
#   - history_defaults(): api_defaults() (a Redis key prefix of its own per
#     block), and the keys of those prefixes deleted at exit;
#   - MSG_ID: a json_is() matcher for a message id "<ms>-<seq>";
#   - id_cmp(), increasing(): ids compared as the protocol compares them
#     (milliseconds, then sequence, as integers);
#   - recv_msg(): the next message, asserting that a delivered message
#     ends with its "id";
#   - recv_until(): messages until one matches;
#   - history_key(): the name of a user's stream in Redis.
#
#   use Test::Nginx::Socket 'no_plan';
#   use WsRelay::Test;
#   use WsRelay::Redis;
#   use WsRelay::Api;
#   use WsRelay::History;
#
# Session code ("--- ws_session") sees these functions too.

use strict;
use warnings;

use Exporter ();
use JSON::PP ();
use Time::HiRes qw(time);
use Test::More ();

use WsRelay::Test ();
use WsRelay::Redis ();
use WsRelay::Api ();

our @EXPORT = qw(
    history_defaults MSG_ID id_cmp increasing recv_msg recv_until
    history_key
);

my $JSON = JSON::PP->new->utf8->canonical->allow_nonref;

my @Prefixes;

# the replies to a sender; every other message a client gets from a send
# is a delivered copy
my %REPLY = map { $_ => 1 } qw(chat_delivered notification_result register
                               resume error pong welcome);


# api_defaults(%o), plus: the keys of each block's prefix are deleted at
# exit (its users' streams and meta hashes outlive nginx in Redis).
sub history_defaults {
    my (%o) = @_;

    # added first, run last (each is put in front of the others): after
    # api_defaults' has set the block's prefix
    Test::Nginx::Socket::add_block_preprocessor(sub {
        push @Prefixes, $ENV{TEST_NGINX_RELAY_PREFIX};
    });

    WsRelay::Api::api_defaults(%o);
}

END {
    local $?;

    for my $prefix (@Prefixes) {
        eval {
            local $SIG{__DIE__};
            my $cursor = 0;

            do {
                my $r = WsRelay::Redis::redis_cmd('SCAN', $cursor, 'MATCH',
                                                  "$prefix*", 'COUNT', 1000);
                $cursor = $r->[0];
                WsRelay::Redis::redis_cmd('DEL', @{ $r->[1] })
                    if @{ $r->[1] };
            } while ($cursor);
        };
    }
}


# A message id of now: "<ms>-<seq>", ms within 5 minutes of the clock.
sub MSG_ID () {
    return bless {
        what => 'a message id "<ms>-<seq>" of now',
        ok => sub {
            my $v = shift;
            defined $v && !ref $v && !WsRelay::Test::is_json_number($v)
            && $v =~ /^(\d{1,15})-(\d{1,15})$/
            && abs($1 - time * 1000) < 300_000;
        },
    }, 'WsRelay::Test::Matcher';
}

# <=> for message ids: milliseconds, then sequence
sub id_cmp {
    my ($x, $y) = @_;

    my ($xm, $xs) = split /-/, $x;
    my ($ym, $ys) = split /-/, $y;
    return $xm <=> $ym || ($xs // 0) <=> ($ys // 0);
}

# '' when each id is greater than the one before; else the first two
# that are not
sub increasing {
    my @ids = @_;

    for my $i (1 .. $#ids) {
        my ($x, $y) = @ids[$i - 1, $i];
        return 'id ' . ($i - 1) . ' is ' . ($x // 'missing') . ', id '
               . "$i is " . ($y // 'missing')
            unless defined $x && defined $y
                   && $x =~ /^\d+-\d+$/ && $y =~ /^\d+-\d+$/
                   && id_cmp($x, $y) < 0;
    }

    return '';
}

# The next message of a client, decoded; dies when what comes within
# $timeout is not a JSON object. A delivered copy (not a reply) that
# carries an "id" is asserted to have it as its last member.
sub recv_msg {
    my ($c, $timeout) = @_;

    my $m = $c->next_message($timeout);

    die "expected a JSON text message, got "
        . WsRelay::Test::Client::describe($m) . "\n"
        unless $m && $m->{type} eq 'text';

    return decode_msg($m->{data});
}

sub decode_msg {
    my $text = shift;

    my $msg = eval { $JSON->decode($text) };
    die "not a JSON object: $text\n" unless ref $msg eq 'HASH';

    if (exists $msg->{id} && !$REPLY{ $msg->{type} // '' }) {
        my @keys = WsRelay::Api::json_keys($text);
        Test::More::is($keys[-1], 'id', "$WsRelay::Test::BlockName - a"
                       . ' delivered message ends with its "id"')
            or Test::More::diag($text);
    }

    return $msg;
}

# Messages of a client (as recv_msg reads them) until $done->($msg)
# holds for one (included), or none comes for $quiet seconds (default
# 3), or $secs (default 10) pass: the list.
sub recv_until {
    my ($c, $done, $secs, $quiet) = @_;

    my $deadline = time + ($secs // 10);
    my @got;

    while (1) {
        my $left = $deadline - time;
        last if $left <= 0;

        my $m = $c->next_message($left < ($quiet // 3) ? $left : $quiet // 3)
            or last;

        die "expected JSON text messages, got "
            . WsRelay::Test::Client::describe($m) . "\n"
            unless $m->{type} eq 'text';

        push @got, decode_msg($m->{data});
        last if $done->($got[-1]);
    }

    return @got;
}

# the stream of a user's history: "<prefix>h:{<user>}"
sub history_key {
    my $user = shift;

    return "$ENV{TEST_NGINX_RELAY_PREFIX}h:{$user}";
}


sub import {
    my ($pkg, @symbols) = @_;
    my $caller = caller;

    # also into main ("eval" sections) and into ws_session code
    Exporter::export($pkg, $caller, @symbols);
    Exporter::export($pkg, 'main', @symbols) if $caller ne 'main';
    Exporter::export($pkg, 'WsRelay::Test::Session', @symbols);
}

1;
