package WsRelay::Traffic;

# Chat traffic for the fault tests, judged message by message (the
# judging of t/012 and t/019, for users that may hold several
# connections): every round each sender sends one chat to each of its
# targets and reads the replies; every chat that arrives on any
# connection is recorded, with the id it carries (ws_relay_history).
#
#   my $t = WsRelay::Traffic->new(
#       clients => {alice => $c1, bob => $c2, bob2 => $c3},   # connections
#       users => {alice => 'alice', bob => 'bob', bob2 => 'bob'},
#       pairs => [[qw(alice bob)], [qw(bob alice)]]);    # [connection, user]
#   $t->run_for(1);
#   my $back = $t->run_until_delivered(10);
#   $t->check('every message judged', sub { $_[0] < $back ? 'fault' : 'up' });
#
# User ids are words (\w+): a chat's text is "<sender>><target>:<round>".

use strict;
use warnings;

use JSON::PP ();
use Test::More ();
use Time::HiRes qw(sleep time);

use WsRelay::Test ();

my $JSON = JSON::PP->new->utf8;

# WsRelay::Traffic->new(clients => {name => client},
#                       users => {name => user id},
#                       pairs => [[sender name, target user], ...])
sub new {
    my ($class, %o) = @_;

    return bless { %o, seq => 0, sent => [], got => {}, ids => {},
                   copy_id => {}, closed => [] }, $class;
}

sub client { $_[0]{clients}{$_[1]} }

# the names of the connections of a user
sub conns_of {
    my ($self, $user) = @_;

    return grep { $self->{users}{$_} eq $user } sort keys %{ $self->{clients} };
}

# the chats sent so far: [{from, to, seq, sent, delivered, id}, ...]
sub sent { @{ $_[0]{sent} } }

# the chats that arrived without an id: "<connection> <chat text>"
sub copies_without_id { @{ $_[0]{bare} || [] } }

# one round; true when every chat of it was reported delivered
sub round {
    my $self = shift;

    my $seq = ++$self->{seq};
    my (%mine, @round);

    for my $pair (@{ $self->{pairs} }) {
        my ($from, $to) = @$pair;
        my $c = $self->client($from);
        next if $c->{gone};

        my $m = { from => $from, to => $to, seq => $seq, sent => time };
        $c->send_json({type => 'chat', targetUserId => $to,
                       text => "$self->{users}{$from}>$to:$seq"});
        push @{ $self->{sent} }, $m;
        push @{ $mine{$from} }, $m;
        push @round, $m;
    }

    for my $from (sort keys %mine) {
        for my $m (@{ $mine{$from} }) {
            my $r = $self->reply($from) or last;
            $m->{delivered} = $r->{delivered} ? 1 : 0;
            $m->{id} = $r->{id};
        }
    }

    $self->pump($_, 0.002) for sort keys %{ $self->{clients} };

    return @round && !grep { !$_->{delivered} } @round;
}

sub reply {
    my ($self, $name) = @_;

    while (1) {
        my $m = $self->receive($name, 3) or return undef;
        return $m if $m->{type} eq 'chat_delivered';
    }
}

sub pump {
    my ($self, $name, $secs) = @_;

    1 while $self->receive($name, $secs);
}

# the next message of a connection, a chat recorded; a close or the end
# of the connection is recorded too (none is expected)
sub receive {
    my ($self, $name, $secs) = @_;

    my $c = $self->client($name);
    return undef if $c->{gone};

    my $m = $c->next_message($secs) or return undef;

    if ($m->{type} eq 'close' || $m->{type} eq 'eof') {
        push @{ $self->{closed} }, "$name: " . ($m->{code} // 'eof');
        $c->{gone} = 1;
        return undef;
    }

    my $msg = $JSON->decode($m->{data});

    if ($msg->{type} eq 'chat') {
        my ($from, $to, $seq) = $msg->{text} =~ /^(\w+)>(\w+):(\d+)$/
            or die "unexpected chat \"$msg->{text}\"\n";
        die "$name got a chat for $to\n" if $to ne $self->{users}{$name};
        push @{ $self->{got}{$name}{"$from>$to"} }, $seq;

        if (defined $msg->{id}) {
            push @{ $self->{ids}{$name} }, $msg->{id};
            $self->{copy_id}{"$name $from>$to:$seq"} //= $msg->{id};

        } else {
            push @{ $self->{bare} }, "$name $from>$to:$seq";
        }
    }

    return $msg;
}

sub run_for {
    my ($self, $secs) = @_;

    my $end = time + $secs;
    while (time < $end) {
        $self->round;
        sleep 0.01;
    }
}

# rounds until one is fully delivered (or $rounds in a row): the time the
# first of them was sent, or undef
sub run_until_delivered {
    my ($self, $secs, $rounds) = @_;

    # $rounds (1): delivered so many rounds in a row, the time of the first
    my ($end, $first, $n) = (time + $secs, undef, 0);
    while (time < $end) {
        my $start = time;

        if ($self->round) {
            $first //= $start;
            return $first if ++$n >= ($rounds // 1);

        } else {
            ($first, $n) = (undef, 0);
        }

        sleep 0.02;
    }
    return undef;
}

# "<ms>-<seq>" ids compared as two integers
sub id_before {
    my ($x, $y) = @_;

    my ($xm, $xs) = split /-/, $x;
    my ($ym, $ys) = split /-/, $y;
    return $xm < $ym || ($xm == $ym && ($xs // 0) < ($ys // 0));
}

# Judges every message by $phase->(send time), on each connection of its
# target user:
#   up     reported delivered, received once on each;
#   kept   received once on each, whatever the reply said (history
#          brought it, late), and a chat reported not delivered was kept
#          (its reply has an id);
#   fault  received once on each connection on the sender's worker (and
#          then reported delivered), at most once on the others.
# Always: reported delivered means received somewhere, nothing twice,
# each connection gets each sender's chats in order, a copy carries the
# id its sender's reply named, the ids a connection gets increase, no
# client closed.
sub check {
    my ($self, $name, $phase) = @_;

    $self->pump($_, 0.5) for sort keys %{ $self->{clients} };

    my %count;
    for my $conn (keys %{ $self->{got} }) {
        for my $key (keys %{ $self->{got}{$conn} }) {
            $count{"$conn $key:$_"}++ for @{ $self->{got}{$conn}{$key} };
        }
    }

    my (%bad, %phases);
    my $late = 0;

    for my $m (@{ $self->{sent} }) {
        my $p = $phase->($m->{sent});
        my $from = $self->{users}{ $m->{from} };
        my $pid = $self->client($m->{from})->{pid};
        my $chat = "$from>$m->{to}:$m->{seq}";
        my (@n, $total, $has_local, $local_missing, $missing);

        for my $conn ($self->conns_of($m->{to})) {
            my $n = $count{"$conn $chat"} // 0;
            my $local = $self->client($conn)->{pid} == $pid;
            push @n, "$conn" . ($local ? '(local)' : '') . " $n";
            $total += $n;
            $missing++ if $n != 1;
            $has_local++ if $local;
            $local_missing++ if $local && $n != 1;
            push @{ $bad{'received twice'} }, "$conn $chat" if $n > 1;

            my $id = $self->{copy_id}{"$conn $chat"};
            push @{ $bad{'a copy with another id than the reply'} },
                 "$conn $chat: $id, reply " . ($m->{id} // 'none')
                if defined $id && defined $m->{id} && $id ne $m->{id};
        }

        my $what = "$chat (delivered " . ($m->{delivered} // 'no reply')
                   . (exists $m->{id} ? ', id ' . ($m->{id} // 'none') : '')
                   . ', received: ' . join(', ', @n) . ')';

        $phases{$p}++;
        $late++ if defined $m->{delivered} && !$m->{delivered} && $total;

        push @{ $bad{'reported delivered, never received'} }, $what
            if $m->{delivered} && !$total;
        push @{ $bad{'reported neither delivered nor kept'} }, $what
            if $p eq 'kept' && defined $m->{delivered} && !$m->{delivered}
               && !defined $m->{id};
        push @{ $bad{"lost ($p)"} }, $what
            if ($p eq 'up' && (!$m->{delivered} || $missing))
               || ($p eq 'kept' && $missing)
               || ($p ne 'kept' && $has_local
                   && (!$m->{delivered} || $local_missing));
    }

    for my $conn (sort keys %{ $self->{got} }) {
        for my $key (sort keys %{ $self->{got}{$conn} }) {
            my $seqs = $self->{got}{$conn}{$key};
            push @{ $bad{'out of order'} }, "$conn $key:$seqs->[$_]"
                for grep { $seqs->[$_] <= $seqs->[$_ - 1] } 1 .. $#$seqs;
        }
    }

    for my $conn (sort keys %{ $self->{ids} }) {
        my $ids = $self->{ids}{$conn};
        push @{ $bad{'ids not increasing'} },
             "$conn: $ids->[$_ - 1] then $ids->[$_]"
            for grep { !id_before($ids->[$_ - 1], $ids->[$_]) } 1 .. $#$ids;
    }

    $bad{'clients closed'} = $self->{closed} if @{ $self->{closed} };

    Test::More::ok(!%bad, "$WsRelay::Test::BlockName - $name: "
                   . join(', ', map { "$phases{$_} $_" } sort keys %phases)
                   . " ($late arrived though reported not delivered)")
        or Test::More::diag(join "\n", map {
               my @l = @{ $bad{$_} };
               "$_: " . @l . ': ' . join(' ', @l[0 .. ($#l > 9 ? 9 : $#l)])
           } sort keys %bad);
}

1;
