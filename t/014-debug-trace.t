# With "error_log ... debug", one chat can be followed through the log:
# on the sender's connection (nginx's "*N" of each line) from its frame
# to its delivery, the PUBLISH, the ack and the reply; on the worker of
# the recipient, the message from the bus to the recipient's connection.

use Test::Nginx::Socket 'no_plan';
use WsRelay::Test;
use WsRelay::Redis;

redis_start();

ws_defaults(http_config => <<'_EOC_');
    ws_relay_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
_EOC_

# The lines of the error log of connection "<pid>#<tid>: *N", the one
# whose register line names this connectionId; a second list has the
# lines of no connection (the bus's).
sub trace_of {
    my ($id) = @_;

    # read apart: the block's own log checks read from where they were
    open my $in, '<', $Test::Nginx::Util::ErrLogFile or return ([], []);
    my @log = <$in>;
    close $in;

    my ($conn) = map { / (\d+#\d+: \*\d+) ws relay: connection \Q$id\E /
                       ? $1 : () } @log;
    return ([], []) unless defined $conn;
    return ([grep { / \Q$conn\E ws relay: / } @log],
            [grep { !/\*\d+ / && /ws relay: / } @log]);
}

# The patterns, in this order, each on a line after the previous match;
# returns the first one missing.
sub in_order {
    my ($lines, @patterns) = @_;

    my $i = 0;
    for my $re (@patterns) {
        $i++ while $i < @$lines && $lines->[$i] !~ $re;
        return $re if $i == @$lines;
        $i++;
    }
    return undef;
}

master_on();
workers(2);
log_level('debug');
run_tests();

__DATA__

=== TEST 1: a chat across workers, step by step in the debug log
--- ws_session
my ($w1, $w2) = ws_open_per_worker('/ws', 1);
my ($a, $b) = ($w1->[0], $w2->[0]);
redis_up_ok($a, $b);
$a->call({type => 'register', userId => 'alice'});
$b->call({type => 'register', userId => 'bob'});
redis_routes_ok(bob => 1);

json_is($a->call({type => 'chat', targetUserId => 'bob', text => 'trace me'}),
        {type => 'chat_delivered', targetUserId => 'bob', delivered => TRUE,
         timestamp => NOW}, 'delivered');
json_is($b->recv_json, {type => 'chat', text => 'trace me', sender => 'alice',
                        timestamp => NOW}, 'bob gets it');

# nginx may write a line just after the bytes it logs reached the client
my ($alice, $bus);
for (1 .. 20) {
    ($alice, $bus) = main::trace_of($a->{id});
    last if grep { /ack received/ } @$bus
            and $alice->[-1] && $alice->[-1] =~ /bytes sent/;
    sleep 0.1;
}
ok(@$alice > 0, "alice's connection has debug lines");

my ($id) = map { /delivery (\d+) to "bob"/ ? $1 : () } @$alice;
ok(defined $id, 'the delivery to bob is named on alice\'s connection');
$id //= 'none';

my $missing = main::in_order($alice,
    qr/ws relay: \d+ bytes read/,
    qr/ws relay: frame opcode:1 len:\d+ first:1 last:1 compressed:0/,
    qr/ws relay: message of \d+ bytes/,
    qr/ws relay: message of type "chat"/,
    qr/ws relay: chat to "bob"/,
    qr/ws relay: delivery $id to "bob": \d+ bytes, 0 local connections/,
    qr/ws relay: delivery $id published, awaiting acks/,
    qr/ws relay: delivery $id: ack 1 with 1 connections/,
    qr/ws relay: delivery $id done: 1 delivered/,
    qr/ws relay: delivery $id replied: 1 delivered/,
    qr/ws relay: frame queued opcode:1 len:\d+ rsv1:0/,
    qr/ws relay: \d+ bytes sent/);
is($missing, undef, "alice's connection: frame, delivery, PUBLISH, ack, "
                    . 'reply, in this order');

$missing = main::in_order($bus,
    qr/ws relay: delivery $id: PUBLISH to "bob"/,
    qr/ws relay: delivery $id from \S+ to "bob": 1 local connections, ack/,
    qr/ws relay: delivery $id: ack received: 1/);
is($missing, undef, 'the bus: the PUBLISH, its receipt on bob\'s worker, '
                    . 'the ack back');
--- no_error_log
[error]
[crit]
[alert]
