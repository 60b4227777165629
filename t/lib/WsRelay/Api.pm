package WsRelay::Api;

# HTTP API tools for the Test::Nginx suites, beside WsRelay::Test:
#   - api_defaults(): the usual config of an API suite (a ws_relay location,
#     the five API routes, a Redis with a key prefix of its own per block);
#   - an HTTP/1.1 client over plain sockets (http_request) that can send a
#     body in slow pieces or chunked, and reads to the end of the connection,
#     so a HEAD reply carrying body bytes is seen;
#   - api_get/api_post/api_call: one request, one assertion that the reply
#     has the status, the Content-Type and an exact Content-Length, and the
#     decoded JSON for json_is();
#   - wait_presence(): until the users of each worker are in redis-info;
#   - next_json(): the next message of each of several clients;
#   - prom_parse(): a tiny checker of the Prometheus text format 0.0.4.
#
#   use Test::Nginx::Socket 'no_plan';
#   use WsRelay::Test;
#   use WsRelay::Redis;
#   use WsRelay::Api;
#
# Session code ("--- ws_session") sees these functions too.

use strict;
use warnings;

use Exporter ();
use IO::Select ();
use IO::Socket::INET ();
use JSON::PP ();
use Socket qw(IPPROTO_TCP TCP_NODELAY);
use Time::HiRes qw(sleep time);
use Test::More ();

use WsRelay::Test ();
use WsRelay::Redis ();

our @EXPORT = qw(example_api_config 
    api_defaults api_routes_config
    http_request http_send http_read http_header
    api_call api_check api_get api_post api_wait metrics_get json_keys
    next_json wait_presence prom_parse MATCHING
);

my $JSON = JSON::PP->new->utf8->canonical->allow_nonref;

my @Prefixes;
my $Blocks = 0;


# --- suite defaults ----------------------------------------------------------

# The five routes, as README.md places them.
sub api_routes_config {
    return <<'_EOC_';
        location = /api/health       { ws_relay_api health; }
        location = /api/connections  { ws_relay_api connections; }
        location = /api/send-to-user { ws_relay_api send; }
        location = /api/redis-info   { ws_relay_api redis_info; }
        location = /api/metrics      { ws_relay_api metrics; }
_EOC_
}

# The blocks of nginx.conf.example that make the API, as they are there:
# (http_config, config) with the map of the error messages, "location
# /api/" and "location @api_error", so that a test checks the example.
sub example_api_config {
    my $file = ($ENV{TEST_NGINX_EXAMPLE}
                // (__FILE__ =~ s{t/lib/WsRelay/Api\.pm$}{}r)
                   . 'nginx.conf.example');
    open my $in, '<', $file or die "$file: $!\n";
    my $text = do { local $/; <$in> };
    close $in;

    my $block = sub {
        my ($start) = @_;
        my $i = index $text, $start;
        die "no \"$start\" in $file\n" if $i < 0;
        my ($depth, $j) = (0, $i);
        while ($j < length $text) {
            my $c = substr $text, $j++, 1;
            $depth++ if $c eq '{';
            last if $c eq '}' && --$depth == 0;
        }
        return '    ' . substr($text, $i, $j - $i) . "\n";
    };

    return ($block->('map $status $api_error_message {'),
            $block->('location /api/ {') . $block->('location @api_error {'));
}

# Defaults for blocks without their own sections (or given here):
#   config: a ws_relay location /ws and the API under /api/
#   http_config: ws_relay_redis on $TEST_NGINX_REDIS_PORT
# Every block gets $TEST_NGINX_RELAY_PREFIX, a Redis key prefix of its
# own: presence left in Redis by an earlier block, a killed worker or
# another suite stays out of its figures.
sub api_defaults {
    my (%o) = @_;

    my $config = $o{config} // "    location = /ws {\n        ws_relay;\n"
                               . "    }\n" . api_routes_config();
    my $http_config = $o{http_config}
        // "    ws_relay_redis 127.0.0.1:\$TEST_NGINX_REDIS_PORT"
           . " prefix=\$TEST_NGINX_RELAY_PREFIX;\n";

    (my $file = $0) =~ s{.*/|\.t$}{}g;
    $file =~ s/[^A-Za-z0-9]+/_/g;

    Test::Nginx::Socket::add_block_preprocessor(sub {
        my $block = shift;

        $ENV{TEST_NGINX_RELAY_PREFIX} = "t:$file:$$:" . ++$Blocks . ':';
        push @Prefixes, $ENV{TEST_NGINX_RELAY_PREFIX};

        $block->set_value('config', $config) unless defined $block->config;
        $block->set_value('http_config', $http_config)
            unless defined $block->http_config;
    });
}

# what a block may leave in Redis: the lease set of a killed worker
END {
    for my $prefix (@Prefixes) {
        eval { local $SIG{__DIE__}; WsRelay::Redis::redis_cmd('DEL',
                                                 "${prefix}nodes") };
    }
}


# --- HTTP client -------------------------------------------------------------

sub server_port_now {
    return Test::Nginx::Util::server_port()
        if defined &Test::Nginx::Util::server_port;
    return $ENV{TEST_NGINX_SERVER_PORT} // 1984;
}

# http_request('POST', '/api/send-to-user', body => {...} or 'text',
#     headers => [k => v], port => n, pieces => n, delay => s,
#     chunked => 1, timeout => s)
# Sends the request (Connection: close), the body in n pieces with a
# delay between them when asked, and reads until the server closes.
# Returns {status, headers => [[k, v]], body, head}; dies when the server
# does not answer.
sub http_request {
    my ($method, $path, %o) = @_;

    return http_read(http_send($method, $path, %o));
}

# The sending half of http_request: returns a handle for http_read(), so
# that several requests can be in flight at once.
sub http_send {
    my ($method, $path, %o) = @_;

    my $port = $o{port} // server_port_now();
    my $timeout = $o{timeout} // 5;

    my $body = $o{body};
    $body = $JSON->encode($body) if ref $body;

    my @pieces;

    if (defined $body) {
        my $n = $o{pieces} || 1;
        my $size = int(length($body) / $n) || 1;

        @pieces = map { substr $body, $_ * $size,
                        $_ == $n - 1 ? length($body) : $size } 0 .. $n - 1;
        @pieces = grep { length } @pieces;

        @pieces = ((map { sprintf("%x\r\n", length) . "$_\r\n" } @pieces),
                   "0\r\n\r\n")
            if $o{chunked};
    }

    my @headers = (Host => 'localhost', Connection => 'close');

    if (defined $body) {
        push @headers, $o{chunked} ? ('Transfer-Encoding' => 'chunked')
                                   : ('Content-Length' => length $body);
        push @headers, 'Content-Type' => 'application/json';
    }

    my @extra = @{ $o{headers} || [] };

    while (my ($k, $v) = splice @extra, 0, 2) {
        my ($i) = grep { lc $headers[$_ * 2] eq lc $k } 0 .. @headers / 2 - 1;

        if (defined $i) {
            $headers[$i * 2 + 1] = $v;

        } else {
            push @headers, $k, $v;
        }
    }

    my $head = "$method $path HTTP/1.1\r\n";

    while (my ($k, $v) = splice @headers, 0, 2) {
        $head .= "$k: $v\r\n" if defined $v;
    }

    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                     PeerPort => $port, Proto => 'tcp',
                                     Timeout => $timeout)
        or die "connect to 127.0.0.1:$port: $!\n";

    setsockopt($sock, IPPROTO_TCP, TCP_NODELAY, 1);
    $sock->autoflush(1);

    local $SIG{PIPE} = 'IGNORE';

    my @out = $o{delay} ? ("$head\r\n", @pieces)
                        : ("$head\r\n" . join '', @pieces);

    for my $i (0 .. $#out) {
        sleep $o{delay} if $i > 0;
        defined syswrite($sock, $out[$i]) or last;
    }

    return { sock => $sock, what => "$method $path", timeout => $timeout };
}

# The reading half: the reply to a request of http_send().
sub http_read {
    my $h = shift;

    my ($sock, $what) = @$h{qw(sock what)};
    my $raw = '';
    my $sel = IO::Select->new($sock);
    my $deadline = time + $h->{timeout};

    while (1) {
        my $left = $deadline - time;
        die "no end of reply to $what within $h->{timeout} s: $raw\n"
            if $left <= 0;
        next unless $sel->can_read($left);
        my $n = sysread($sock, my $chunk, 65536);
        last unless $n;
        $raw .= $chunk;
    }

    close $sock;

    die "no reply to $what\n" if $raw eq '';

    my ($top, $rest) = $raw =~ /\A(.*?)\r\n\r\n(.*)\z/s
        or die "bad reply to $what: $raw\n";

    my ($status_line, @lines) = split /\r\n/, $top;
    my ($status) = $status_line =~ m{^HTTP/1\.[01] (\d{3})}
        or die "bad status line \"$status_line\"\n";

    return {
        status  => $status + 0,
        head    => $top,
        headers => [ map { /^([^:]+):\s*(.*)$/ ? [$1, $2] : () } @lines ],
        body    => $rest,
    };
}

sub http_header {
    my ($res, $name) = @_;

    my @v = map { $_->[1] } grep { lc $_->[0] eq lc $name }
            @{ $res->{headers} };
    return @v ? join(', ', @v) : undef;
}

# What is wrong with a reply: status, Content-Type, Content-Length (one
# header, equal to the body's length; for HEAD, no body bytes at all).
sub reply_problems {
    my ($res, $method, %want) = @_;

    my @p;
    my $status = $want{status} // 200;
    my $type = $want{type} // 'application/json';

    push @p, "status $res->{status}, want $status"
        if $res->{status} != $status;

    my $got_type = http_header($res, 'Content-Type') // '(none)';
    push @p, "Content-Type \"$got_type\", want \"$type\""
        if $got_type ne $type;

    my @len = map { $_->[1] } grep { lc $_->[0] eq 'content-length' }
              @{ $res->{headers} };
    my $body_len = length $res->{body};

    if (@len != 1 || $len[0] !~ /^\d+$/) {
        push @p, 'want one numeric Content-Length, got '
                 . (@len ? join(', ', @len) : 'none');

    } elsif ($method eq 'HEAD') {
        push @p, "HEAD reply carries $body_len body bytes" if $body_len;

    } elsif ($len[0] != $body_len) {
        push @p, "Content-Length $len[0], body $body_len bytes";
    }

    push @p, 'Transfer-Encoding on a reply with Content-Length'
        if defined http_header($res, 'Transfer-Encoding');

    return @p;
}

# One request, no assertion: (decoded JSON or undef, reply, problems).
sub api_fetch {
    my ($method, $path, %o) = @_;

    my %want = (status => delete $o{status}, type => delete $o{type});

    my $res = eval { http_request($method, $path, %o) };
    return (undef, undef, "request failed: $@") unless $res;

    my ($json, @p) = judge($res, $method, %want);
    return ($json, $res, @p);
}

# (JSON or undef, problems) of a reply; %want: status, type
sub judge {
    my ($res, $method, %want) = @_;

    delete @want{grep { !defined $want{$_} } keys %want};

    my @p = reply_problems($res, $method, %want);
    my $json;

    if ($method ne 'HEAD' && ($want{type} // 'application/json')
                             eq 'application/json')
    {
        $json = eval { $JSON->decode($res->{body}) };
        push @p, "body is not a JSON object: $res->{body}"
            unless ref $json eq 'HASH';
    }

    return ($json, @p);
}

sub assert_reply {
    my ($res, $desc, $status, $type, @p) = @_;

    Test::More::ok(!@p, "$WsRelay::Test::BlockName - $desc: $status,"
                        . " $type, exact Content-Length")
        or Test::More::diag(join("\n", @p)
                            . ($res ? "\n  reply: $res->{head}\r\n\r\n"
                                      . $res->{body} : ''));
}

# api_call('PUT', '/api/health', status => 405, body => ..., desc => '...',
#          reply => \my $res): one assertion for the reply's status, type
# and length; returns the decoded JSON (always a scalar), and puts the
# reply into $res when asked.
sub api_call {
    my ($method, $path, %o) = @_;

    my $desc = delete $o{desc} // "$method $path";
    my $reply = delete $o{reply};
    my $status = $o{status} // 200;
    my $type = $o{type} // 'application/json';

    my ($json, $res, @p) = api_fetch($method, $path, %o);

    assert_reply($res, $desc, $status, $type, @p);

    $$reply = $res if $reply;
    return $json;
}

# api_check($reply, 'POST', status => 200, desc => '...'): the assertion
# of api_call() for a reply read with http_read(); returns the JSON.
sub api_check {
    my ($res, $method, %o) = @_;

    my $status = $o{status} // 200;
    my $type = $o{type} // 'application/json';
    my ($json, @p) = judge($res, $method, status => $o{status},
                           type => $o{type});

    assert_reply($res, $o{desc} // $method, $status, $type, @p);
    return $json;
}

sub api_get { my $path = shift; api_call('GET', $path, @_) }

sub api_post {
    my ($path, $body, %o) = @_;

    return api_call('POST', $path, body => $body, %o);
}

# Polls GET $path until $cond->($json) holds or $o{secs} (default 5) pass,
# then asserts the reply's form once and returns the last JSON (the reply
# goes to reply => \my $res).
sub api_wait {
    my ($path, $cond, %o) = @_;

    my $secs = delete $o{secs} // 5;
    my $reply = delete $o{reply};
    my $deadline = time + $secs;
    my ($json, $res, @p);

    while (1) {
        ($json, $res, @p) = api_fetch('GET', $path, %o);
        last if !@p && eval { $cond->($json) };
        last if time >= $deadline;
        sleep 0.05;
    }

    Test::More::ok(!@p, "$WsRelay::Test::BlockName - GET $path (polled):"
                        . " 200, application/json, exact Content-Length")
        or Test::More::diag(join "\n", @p);

    $$reply = $res if $reply;
    return $json;
}

# GET /api/metrics: the text, with one assertion for the status, the
# type and the length (the reply goes to reply => \my $res).
sub metrics_get {
    my (%o) = @_;

    my $reply = delete $o{reply};
    my $res;

    api_call('GET', '/api/metrics', type => 'text/plain; version=0.0.4',
             reply => \$res, %o);

    $$reply = $res if $reply;
    return $res ? $res->{body} : '';
}

# A matcher for json_is(): a JSON string matching the pattern.
sub MATCHING ($) {
    my $re = shift;

    return bless { what => "a string matching $re",
                   ok => sub { my $v = shift;
                               defined $v && !ref $v
                               && !WsRelay::Test::is_json_number($v)
                               && $v =~ $re } },
                 'WsRelay::Test::Matcher';
}

# The keys of the top-level object of a JSON text, in their order.
sub json_keys {
    my $text = shift;

    my (@keys, $depth, $str, $in_str);
    $depth = 0;

    while ($text =~ /\G(\\.|"|[{\[]|[}\]]|:|[^"\\{}\[\]:]+)/gcs) {
        my $token = $1;

        if ($in_str) {
            if ($token eq '"') {
                $in_str = 0;

            } else {
                $str .= $token;
            }

            next;
        }

        if ($token eq '"') {
            $in_str = 1;
            $str = '';

        } elsif ($token =~ /^[{\[]$/) {
            $depth++;

        } elsif ($token =~ /^[}\]]$/) {
            $depth--;

        } elsif ($token eq ':') {
            push @keys, $str if $depth == 1;
        }
    }

    return @keys;
}


# --- WebSocket clients -------------------------------------------------------

# The next message of each client, decoded; undef for a client that got
# no text message within $secs.
sub next_json {
    my ($secs, @clients) = @_;

    return map { my $m = $_->next_message($secs);
                 $m && $m->{type} eq 'text'
                 ? eval { $JSON->decode($m->{data}) } : undef } @clients;
}

# Polls redis-info (of the nginx on port => n) until every worker of that
# nginx has both Redis links up and each worker named lists its users:
# wait_presence({pid => [users]}, port => n). Right after a start, a
# worker's links may still be connecting: users registered by then join
# the cluster only when they are up.
sub wait_presence {
    my ($want, %o) = @_;

    return api_wait('/api/redis-info', sub {
        my $pu = $_[0]{processUsers};

        return 0 if grep { $_->{redis} ne 'connected' }
                         @{ $_[0]{workers} };

        for my $pid (keys %$want) {
            my %has = map { $_ => 1 } @{ $pu->{$pid} || [] };
            return 0 if grep { !$has{$_} } @{ $want->{$pid} };
        }

        return 1;
    }, %o);
}


# --- Prometheus text format --------------------------------------------------

my $NAME = qr/[a-zA-Z_:][a-zA-Z0-9_:]*/;
my $LABEL = qr/[a-zA-Z_][a-zA-Z0-9_]*/;
my $LABEL_VALUE = qr/(?:[^"\\\n]|\\[\\"n])*/;
my $VALUE = qr/[+-]?(?:Inf|NaN|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)/;

# prom_parse($text): ({name => {type, help, samples => [{labels, value}]}},
# [problems]). Checks the text exposition format 0.0.4 as Prometheus reads
# it: HELP and TYPE at most once per family and before its samples, the
# samples of a family together, valid metric and label names, quoted and
# escaped label values, no duplicate label or series, a float value, a
# final newline; and the naming rules: counters end in _total, nothing
# else does, counters are never negative.
sub prom_parse {
    my $text = shift;

    my (%fam, @p, %series, %closed);
    my $current = '';
    my $n = 0;

    push @p, 'empty exposition' if $text eq '';
    push @p, 'no newline at the end' if $text ne '' && $text !~ /\n\z/;

    for my $line (split /\n/, $text) {
        $n++;
        next if $line =~ /^\s*$/;

        my $switch_to = sub {
            my $name = shift;

            return if $name eq $current;
            push @p, "line $n: $name continues a family already closed"
                if $closed{$name};
            $closed{$current} = 1 if $current ne '';
            $current = $name;
        };

        if ($line =~ /^#\s*(HELP|TYPE)\s+(\S+)(?:\s+(.*))?$/) {
            my ($kind, $name, $rest) = ($1, $2, $3 // '');

            if ($name !~ /^$NAME$/) {
                push @p, "line $n: bad metric name \"$name\"";
                next;
            }

            $switch_to->($name);
            my $f = $fam{$name} //= { samples => [] };

            if ($kind eq 'HELP') {
                push @p, "line $n: second HELP for $name"
                    if defined $f->{help};
                (my $plain = $rest) =~ s/\\[\\n]//g;
                push @p, "line $n: HELP of $name has a bad escape"
                    if $plain =~ /\\/;
                $f->{help} = $rest;
                next;
            }

            push @p, "line $n: second TYPE for $name" if defined $f->{type};
            push @p, "line $n: TYPE of $name after its samples"
                if @{ $f->{samples} };
            push @p, "line $n: unknown type \"$rest\" for $name"
                unless $rest =~ /^(?:counter|gauge|histogram|summary|untyped)$/;
            $f->{type} = $rest;
            next;
        }

        next if $line =~ /^#/;

        if ($line !~ /^($NAME)(?:\{(.*)\})?[ \t]+(\S+)(?:[ \t]+-?\d+)?[ \t]*$/)
        {
            push @p, "line $n: not a sample: \"$line\"";
            next;
        }

        my ($name, $labels, $value) = ($1, $2, $3);
        my %labels;

        if (defined $labels) {
            my $rest = $labels;

            while ($rest ne '') {
                if ($rest !~ s/^\s*($LABEL)\s*=\s*"($LABEL_VALUE)"\s*//) {
                    push @p, "line $n: bad label syntax at \"$rest\"";
                    last;
                }

                my ($k, $v) = ($1, $2);
                push @p, "line $n: reserved label name $k" if $k =~ /^__/;
                push @p, "line $n: label $k twice" if exists $labels{$k};
                $v =~ s/\\(.)/$1 eq 'n' ? "\n" : $1/ge;
                $labels{$k} = $v;

                last if $rest eq '';

                if ($rest !~ s/^,//) {
                    push @p, "line $n: labels not separated by a comma";
                    last;
                }
            }
        }

        push @p, "line $n: bad value \"$value\"" unless $value =~ /^$VALUE$/;

        $switch_to->($name);
        my $f = $fam{$name} //= { samples => [] };

        push @p, "line $n: sample of $name before its TYPE"
            unless defined $f->{type};
        push @p, "line $n: sample of $name before its HELP"
            unless defined $f->{help};

        my $key = join ',', map { "$_=$labels{$_}" } sort keys %labels;
        push @p, "line $n: series $name\{$key} twice"
            if $series{"$name\{$key}"}++;

        push @{ $f->{samples} }, { labels => \%labels, value => $value };
    }

    for my $name (sort keys %fam) {
        my $f = $fam{$name};
        my $type = $f->{type} // '';

        push @p, "counter $name does not end in _total"
            if $type eq 'counter' && $name !~ /_total$/;
        push @p, "$type $name ends in _total"
            if $type ne 'counter' && $name =~ /_total$/;

        if ($type eq 'counter') {
            push @p, "counter $name has a negative or NaN sample"
                if grep { $_->{value} !~ /^\+?(?:\d|\.|Inf)/ }
                        @{ $f->{samples} };
        }
    }

    return (\%fam, \@p);
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
