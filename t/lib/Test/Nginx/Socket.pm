package Test::Nginx::Socket;

# Data-driven tests of nginx over plain sockets, with the section names and
# meaning of Test::Nginx::Socket (openresty/test-nginx): a .t file written
# for one runs under the other. Built on Test::Base; every sub has a
# prototype, as Spiffy's -Base adds "my $self = shift" to the others.

use Test::Base -Base;

use Errno qw(EAGAIN EWOULDBLOCK EINTR);
use IO::Select ();
use IO::Socket::INET ();
use Time::HiRes qw(sleep time);
use Digest::MD5 ();
use Digest::SHA ();
use List::Util qw(min);

use Test::Nginx::Util;

our $VERSION = '0.01';

our @EXPORT = qw(
    plan run_tests run_test repeat_each no_shuffle no_long_string
    no_root_location workers worker_connections log_level
    master_on master_off master_process_enabled
    server_port server_port_for_client server_addr server_name
    server_root html_dir timeout config_preamble env_to_nginx
    add_block_preprocessor add_cleanup_handler add_test_cleanup_handler
    add_response_body_check bail_out is_str
);

our @ResponseBodyChecks;

my $HaveLongString = eval { require Test::LongString; 1 };

$RunBlockRequests = \&run_block_requests;
$CheckErrorLog = \&check_error_log;
$CheckShutdownErrorLog = \&check_shutdown_error_log;


sub add_response_body_check ($) {
    push @ResponseBodyChecks, shift;
}


sub long_is ($$$) {
    my ($got, $expected, $desc) = @_;

    if ($NoLongString || !$HaveLongString) {
        return is($got, $expected, $desc);
    }

    return Test::LongString::is_string($got, $expected, $desc);
}


sub fmt_str ($) {
    my $s = shift;

    chomp $s;
    $s =~ s/"/\\"/g;
    $s =~ s/\r/\\r/g;
    $s =~ s/\n/\\n/g;
    return $s;
}


# "GET /t" plus an optional body on the next lines, as a full request.
sub build_request ($$$$) {
    my ($name, $request, $more_headers, $conn) = @_;

    $request =~ s/^(?:\s*#[^\n]*\n|\s+)+//s;

    my ($first, $body) = split /\n/, $request, 2;

    if (!defined $first
        || $first !~ /^\s*(\S+)(?:\s+(\S+))?(?:\s+(\S+))?\s*$/)
    {
        bail_out("$name - Request line is not valid. Should be"
                 . " 'meth [url [version]]' but got \""
                 . (defined $first ? $first : '') . "\".");
    }

    my ($method, $url, $version) = ($1, $2 // '/', $3 // 'HTTP/1.1');

    my $headers = '';
    for my $line (split /\n+/, $more_headers) {
        next if $line =~ /^\s*#/;
        my ($key, $val) = split /:\s*/, $line, 2;
        $headers .= "$key: " . ($val // '') . "\r\n";
    }

    my $extra = '';
    $extra .= "Host: $Test::Nginx::Util::ServerName\r\n"
        if $headers !~ /^Host:/mi;
    $extra .= "Connection: $conn\r\n" if $headers !~ /^Connection/mi;

    $body = '' unless defined $body;
    if ($body ne '' && $headers !~ /^Content-Length:/mi
        && $headers !~ /^Transfer-Encoding:\s*chunked/mi)
    {
        $body =~ s/^\s+|\s+$//gs;
        $headers .= "Content-Length: " . length($body) . "\r\n";
    }

    return "$method $url $version\r\n$extra$headers\r\n$body";
}


sub indexed_more_headers ($$) {
    my ($block, $i) = @_;

    my $more = $block->more_headers;
    return '' unless defined $more;

    if (ref $more eq 'ARRAY') {
        bail_out($block->name . " - --- more_headers lacks data for the"
                 . " ${i}th request") unless defined $more->[$i];
        return $more->[$i];
    }

    return $more;
}


# A list of requests, each a list of packets sent in turn.
sub get_req_from_block ($) {
    my $block = shift;

    my $name = $block->name;
    my $raw  = $block->raw_request;

    if (defined $raw) {
        return [ref $raw eq 'ARRAY' ? [@$raw] : [$raw]];
    }

    if (my $reqs = $block->pipelined_requests) {
        bail_out("$name - invalid entries in --- pipelined_requests")
            unless ref $reqs eq 'ARRAY';

        my $all = '';
        for my $i (0 .. $#$reqs) {
            my $req = expand_env_in_text($reqs->[$i], $name,
                                         $Test::Nginx::Util::RandPorts);
            $all .= build_request($name, $req,
                                  indexed_more_headers($block, $i),
                                  $i == $#$reqs ? 'close' : 'keep-alive');
        }
        return [[$all]];
    }

    my $request = $block->request;
    bail_out("$name - request empty") unless defined $request;

    my @list = ref $request eq 'ARRAY' ? @$request : ($request);
    my @reqs;

    for my $i (0 .. $#list) {
        my $one = $list[$i];

        if (ref $one eq 'ARRAY') {
            # packets of one request: rebuild it whole, then split it at
            # the same lengths
            my @packets = map { ref $_ ? $_->{value} : $_ } @$one;
            my $full = build_request($name, join('', @packets),
                                     indexed_more_headers($block, $i),
                                     'close');
            my $extra = length($full) - length(join '', @packets);
            my @out;
            for my $p (@packets[0 .. $#packets - 1]) {
                push @out, substr($full, 0, length($p) + $extra, '');
                $extra = 0;
            }
            push @out, $full;
            push @reqs, \@out;
            next;
        }

        bail_out("$name - invalid --- request: MUST be string or array"
                 . " of requests") if ref $one;

        push @reqs, [build_request($name, $one,
                                   indexed_more_headers($block, $i),
                                   'close')];
    }

    return \@reqs;
}


sub connect_server ($$) {
    my ($name, $timeout) = @_;

    my $deadline = time + 3;

    while (1) {
        my $sock = IO::Socket::INET->new(
            PeerAddr => $Test::Nginx::Util::ServerAddr,
            PeerPort => server_port_for_client(),
            Proto    => 'tcp',
            Timeout  => $timeout,
        );

        return $sock if $sock;

        if (time > $deadline) {
            fail("$name - Can't connect to $Test::Nginx::Util::ServerAddr:"
                 . server_port_for_client() . ": $! (aborted)");
            return undef;
        }

        sleep 0.05;
    }
}


# Writes the packets (sleeping middle_delay between them) while reading,
# until the server closes or nothing comes for $timeout seconds.
sub send_request ($$$$) {
    my ($packets, $middle_delay, $timeout, $block) = @_;

    my $name = $block->name;
    my $sock = connect_server($name, $timeout) or return undef;

    $sock->blocking(0);

    local $SIG{PIPE} = 'IGNORE';

    my @out = @$packets;
    my $buf = shift @out;
    my $resp = '';
    my $writing = 1;
    my $sel = IO::Select->new($sock);

    while (1) {
        my ($r, $w) = IO::Select->select($sel, $writing ? $sel : undef,
                                         undef, $timeout);

        if (!$r && !$w) {
            next if $! == EINTR;

            close $sock;
            fail("ERROR: client socket timed out - $name")
                unless defined $block->abort;
            return $resp;
        }

        if ($w && @$w) {
            my $n = syswrite($sock, $buf);

            if (!defined $n) {
                if ($! != EAGAIN && $! != EWOULDBLOCK) {
                    warn "$name - write failed: $!\n";
                    $writing = 0;
                }

            } else {
                substr($buf, 0, $n, '');

                while ($buf eq '' && @out) {
                    sleep $middle_delay if $middle_delay;
                    $buf = shift @out;
                }

                if ($buf eq '' && !@out) {
                    $writing = 0;

                    if (defined(my $how = $block->shutdown)) {
                        shutdown($sock, $how =~ /^\s*$/ ? 1 : $how);
                    }
                }
            }
        }

        if ($r && @$r) {
            my $n = sysread($sock, my $chunk, 65536);

            if (!defined $n) {
                next if $! == EAGAIN || $! == EWOULDBLOCK || $! == EINTR;
                warn "WARNING: $name - HTTP response read failure: $!\n";
                last;
            }

            last if $n == 0;
            $resp .= $chunk;
        }
    }

    close $sock;
    return $resp;
}


sub response_header ($$) {
    my ($res, $key) = @_;

    my @vals = map { $_->[1] } grep { lc $_->[0] eq lc $key }
               @{ $res->{headers} };
    return @vals ? join(', ', @vals) : undef;
}


# ($res, $raw_headers, $left): $res is {code, headers => [[k, v]], content}
sub parse_response ($$$) {
    my ($name, $raw, $head_req) = @_;

    my $raw_headers = $raw =~ /\A(.*?\r\n)\r\n/s ? $1 : '';

    my ($head, $content) = $raw =~ /\A(.*?)\r?\n\r?\n(.*)\z/s;
    ($head, $content) = ($raw, '') unless defined $head;

    my @lines = split /\r?\n/, $head;
    my $status = shift @lines;
    my $code = defined $status && $status =~ m{^HTTP/\d+\.\d+\s+(\d+)}
               ? $1 : undef;

    my @headers;
    for my $line (@lines) {
        if ($line =~ /^\s+(.*)/ && @headers) {
            $headers[-1][1] .= " $1";

        } elsif ($line =~ /^([^:\s]+)\s*:\s*(.*?)\s*$/) {
            push @headers, [$1, $2];
        }
    }

    my $res = { code => $code, headers => \@headers, content => $content };

    return ($res, $raw_headers) if defined $code && ($code == 101
                                                   || $code == 304);

    my $left;
    my $enc = response_header($res, 'Transfer-Encoding');
    my $len = response_header($res, 'Content-Length');

    if (defined $enc && $enc eq 'chunked') {
        my $decoded = '';

        while (1) {
            if ($content =~ /\G[ \t]*([A-Fa-f0-9]+)[ \t]*(?:;[^\r]*)?\r\n/gc) {
                my $size = hex $1;

                if ($size == 0) {
                    $content =~ /\G(?:[^\r\n]+\r\n)*\r\n/gc;
                    $left = $1 if $content =~ /\G(.+)/gcs;
                    last;
                }

                if ($content !~ /\G(.{$size})\r\n/gcs) {
                    fail("$name - invalid chunked data received");
                    last;
                }

                $decoded .= $1;
                next;
            }

            fail("$name - no last chunk found - $content");
            last;
        }

        $res->{content} = $decoded;

    } elsif (defined $len && $len =~ /^\d+$/) {
        if (length $content < $len) {
            warn "WARNING: $name - response body truncated: $len expected,"
                 . " but got " . length($content) . "\n" unless $head_req;

        } elsif (length $content > $len) {
            $left = substr $content, $len;
            $res->{content} = substr $content, 0, $len;
        }
    }

    return ($res, $raw_headers, $left);
}


sub get_indexed_value ($$$$) {
    my ($name, $value, $req_idx, $need_array) = @_;

    if (ref $value eq 'ARRAY') {
        return $value->[$req_idx];
    }

    if ($need_array) {
        bail_out("$name - You asked for many requests, the expected results"
                 . " should be arrays as well.");
    }

    return $value;
}


sub check_error_code ($$$$$) {
    my ($block, $res, $dry_run, $req_idx, $need_array) = @_;

    my $name = $block->name;
    my $code = ($res && $res->{code}) || '';

  SKIP: {
        skip "$name - tests skipped due to $dry_run", 1 if $dry_run;

        if (defined $block->error_code_like) {
            my $pat = get_indexed_value($name, $block->error_code_like,
                                        $req_idx, $need_array);
            like($code, qr/$pat/sm, "$name - status code ok");

        } elsif (defined $block->error_code) {
            is($code, get_indexed_value($name, $block->error_code, $req_idx,
                                        $need_array),
               "$name - status code ok");

        } else {
            is($code, 200, "$name - status code ok");
        }
    }
}


sub check_raw_response_headers ($$$$$) {
    my ($block, $raw_headers, $dry_run, $req_idx, $need_array) = @_;

    my $name = $block->name;

    for my $kind (qw(like unlike)) {
        my $method = "raw_response_headers_$kind";
        my $pats = $block->$method;
        next unless defined $pats;

      SKIP: {
            skip "$name - $method - tests skipped due to $dry_run", 1
                if $dry_run;

            my $pat = get_indexed_value($name, $pats, $req_idx, $need_array);

            if ($kind eq 'like') {
                like($raw_headers, qr/$pat/s, "$name - raw resp headers like");

            } else {
                unlike($raw_headers, qr/$pat/s,
                       "$name - raw resp headers unlike");
            }
        }
    }
}


# "Key: value" lines; "!Key" means the header must be absent.
sub parse_header_lines ($) {
    my $text = shift;
    my @list;

    for my $line (split /\n/, $text) {
        $line =~ s/^\s+|\s+$//g;
        next if $line eq '';

        if ($line =~ s/^!\s*//) {
            push @list, [$line, undef];
            next;
        }

        my ($key, $val) = split /\s*:\s*/, $line, 2;
        push @list, [$key, $val // ''];
    }

    return @list;
}


sub check_response_headers ($$$$$$) {
    my ($block, $res, $raw_headers, $dry_run, $req_idx, $need_array) = @_;

    my $name = $block->name;

    if (defined $block->response_headers) {
        my $text = get_indexed_value($name, $block->response_headers,
                                     $req_idx, $need_array);

        for my $h (parse_header_lines($text)) {
            my ($key, $val) = @$h;

          SKIP: {
                skip "$name - response_headers - tests skipped due to"
                     . " $dry_run", 1 if $dry_run;

                if (!defined $val) {
                    unlike($raw_headers, qr/^\s*\Q$key\E\s*:/ms,
                           "$name - header $key not present in the raw"
                           . " headers");
                    next;
                }

                $val =~ s/\$ServerPort\b/$ServerPort/g;
                $val =~ s/\$ServerPortForClient\b/$ServerPortForClient/g;

                my $got = $res ? response_header($res, $key) : undef;
                is($got // '', $val, "$name - header $key ok");
            }
        }

    } elsif (defined $block->response_headers_like) {
        my $text = get_indexed_value($name, $block->response_headers_like,
                                     $req_idx, $need_array);

        for my $h (parse_header_lines($text)) {
            my ($key, $val) = @$h;
            my $got = $res ? response_header($res, $key) : undef;

          SKIP: {
                skip "$name - response_headers_like - tests skipped due to"
                     . " $dry_run", 1 if $dry_run;
                like($got // '', qr/^$val$/, "$name - header $key like ok");
            }
        }
    }
}


sub run_filter ($$$) {
    my ($block, $filter, $content) = @_;

    return $filter->($content) if ref $filter eq 'CODE';

    my %builtin = (
        md5_hex  => \&Digest::MD5::md5_hex,
        sha1_hex => \&Digest::SHA::sha1_hex,
        uc       => sub { uc $_[0] },
        lc       => sub { lc $_[0] },
        ucfirst  => sub { ucfirst $_[0] },
        lcfirst  => sub { lcfirst $_[0] },
        length   => sub { length $_[0] },
    );

    if (ref $filter || !$builtin{$filter}) {
        bail_out($block->name . " - unknown filter, \"$filter\", specified"
                 . " in the --- response_body_filters section");
    }

    return $builtin{$filter}->($content);
}


sub transform_response_body ($$$) {
    my ($block, $res, $req_idx) = @_;

    my $filters = $block->response_body_filters;

    return unless $res && defined $res->{content} && defined $filters;

    if (!ref $filters) {
        $filters =~ s/^\s+|\s+$//gs;
        $filters = [split /\s+/, $filters];

    } elsif (ref $filters ne 'ARRAY') {
        $filters = [$filters];
    }

    # [[f1], [f2]]: one list of filters per request
    if (ref $filters->[0] eq 'ARRAY') {
        $filters = $filters->[$req_idx];
        bail_out($block->name . " - the --- response_body_filters"
                 . " two-dimensional array unmatch the specified"
                 . " request($req_idx)") unless defined $filters;
    }

    my $content = $res->{content};
    $content = run_filter($block, $_, $content) for @$filters;
    $res->{content} = $content;
}


sub check_response_body ($$$$$$) {
    my ($block, $res, $dry_run, $req_idx, $repeated_req_idx, $need_array)
        = @_;

    my $name = $block->name;
    my $content = $res ? $res->{content} : undef;
    my $what = "(repeated req $repeated_req_idx, req $req_idx)";

    if (defined $block->response_body) {
        my $expected = get_indexed_value($name, $block->response_body,
                                         $req_idx, $need_array);

        if (defined $expected && !ref $expected) {
            $expected =~ s/\$ServerPort\b/$ServerPort/g;
            $expected =~ s/\$ServerPortForClient\b/$ServerPortForClient/g;
            $expected = expand_env_in_text($expected, $name,
                                           $Test::Nginx::Util::RandPorts);
        }

      SKIP: {
            skip "$name - response_body - tests skipped due to $dry_run", 1
                if $dry_run;

            if (ref $expected) {
                like($content, $expected,
                     "$name - response_body - like $what");

            } else {
                long_is($content, $expected,
                        "$name - response_body - response is expected $what");
            }
        }

    } elsif (defined $block->response_body_like
             || defined $block->response_body_unlike)
    {
        my $type = defined $block->response_body_like ? 'like' : 'unlike';
        my $method = "response_body_$type";
        my $pat = get_indexed_value($name, $block->$method, $req_idx,
                                    $need_array);

        $pat =~ s/\$ServerPort\b/$ServerPort/g;
        $pat =~ s/\$ServerPortForClient\b/$ServerPortForClient/g;

        my $summary = defined $content ? $content : '';
        $summary =~ s/^\s+|\s+$//g;
        $summary =~ s/\s+/ /g;

      SKIP: {
            skip "$name - $method - tests skipped due to $dry_run", 1
                if $dry_run;

            if ($type eq 'like') {
                like($content, qr/$pat/s,
                     "$name - $method - response is expected ($summary)");

            } else {
                unlike($content, qr/$pat/s,
                       "$name - $method - response is expected ($summary)");
            }
        }
    }

    for my $check (@ResponseBodyChecks) {
        $check->($block, $content, $req_idx, $repeated_req_idx, $dry_run);
    }
}


sub as_pattern_list ($) {
    my $pats = shift;

    return [$pats] if ref $pats eq 'Regexp';
    return [@$pats] if ref $pats eq 'ARRAY';

    chomp $pats;
    return [split /\n+/, $pats];
}


sub line_matches ($$) {
    my ($line, $pat) = @_;

    return ref $pat ? $line =~ $pat : index($line, $pat) >= 0;
}


sub mentions ($$) {
    my ($pats, $what) = @_;

    return 0 unless defined $pats;
    return grep { !ref $_ && index($_, $what) >= 0 } @{ as_pattern_list($pats) };
}


sub check_error_log ($$$$$) {
    my ($block, $res, $dry_run, $repeated_req_idx, $need_array) = @_;

    my $name = $block->name;
    my $lines;
    my $what = "(req $repeated_req_idx)";

    my $grep = $block->grep_error_log;
    if (defined $grep) {
        $grep = $grep->[$repeated_req_idx] if ref $grep eq 'ARRAY';

        my $expected = $block->grep_error_log_out;
        bail_out("$name - No --- grep_error_log_out defined but"
                 . " --- grep_error_log is defined") unless defined $expected;

        $expected = expand_env_in_text($expected, $name,
                                       $Test::Nginx::Util::RandPorts);
        $expected = $expected->[$repeated_req_idx]
            if ref $expected eq 'ARRAY';

      SKIP: {
            skip "$name - error_log - tests skipped due to $dry_run", 1
                if $dry_run;

            $lines ||= error_log_data();

            my $matched = '';
            for my $line (@$lines) {
                if (ref $grep ? $line =~ $grep : $line =~ /\Q$grep\E/) {
                    $matched .= "$&\n" if $& !~ /\n/;
                }
            }

            if (ref $expected eq 'Regexp') {
                like($matched, $expected, "$name - grep_error_log_out $what");

            } else {
                long_is($matched, $expected,
                        "$name - grep_error_log_out $what");
            }
        }

    } elsif (defined $block->grep_error_log_out) {
        bail_out("$name - No --- grep_error_log defined but"
                 . " --- grep_error_log_out is defined");
    }

    if (defined $block->error_log) {
        my $pats = as_pattern_list($block->error_log);

        $lines ||= error_log_data();

        for my $line (@$lines) {
            for my $pat (@$pats) {
                next unless defined $pat && line_matches($line, $pat);

              SKIP: {
                    skip "$name - error_log - tests skipped due to $dry_run",
                         1 if $dry_run;
                    pass("$name - pattern \"$pat\" matches a line in"
                         . " error.log $what");
                }
                undef $pat;
            }
        }

        for my $pat (grep { defined } @$pats) {
          SKIP: {
                skip "$name - error_log - tests skipped due to $dry_run", 1
                    if $dry_run;
                fail("$name - pattern \"$pat\" should match a line in"
                     . " error.log $what");
            }
        }
    }

    if (defined $block->no_error_log) {
        my $pats = as_pattern_list($block->no_error_log);
        my %found;

        $lines ||= error_log_data();

        for my $i (0 .. $#$lines) {
            my $line = $lines->[$i];

            for my $pat (@$pats) {
                next unless defined $pat && line_matches($line, $pat);
                next if $found{$pat}++;

              SKIP: {
                    skip "$name - no_error_log - tests skipped due to"
                         . " $dry_run", 1 if $dry_run;

                    my $last = min($i + 9, $#$lines);
                    fail("$name - pattern \"" . fmt_str($pat) . "\" should"
                         . " not match any line in error.log but matches"
                         . " line \"" . fmt_str($line) . "\" $what\n"
                         . join('', @$lines[$i + 1 .. $last]));
                }
            }
        }

        for my $pat (grep { defined && !$found{$_} } @$pats) {
          SKIP: {
                skip "$name - no_error_log - tests skipped due to $dry_run",
                     1 if $dry_run;
                pass("$name - pattern \"" . fmt_str($pat) . "\" does not"
                     . " match a line in error.log $what");
            }
        }
    }

    return if $dry_run;

    $lines ||= error_log_data();

    for my $level (qw(alert crit emerg)) {
        next if mentions($block->error_log, "[$level")
                || mentions($block->no_error_log, "[$level");

        for my $line (grep { /\[$level\]/ } @$lines) {
            warn "WARNING: $name - " . fmt_str($line) . "\n";
        }
    }

    for my $line (grep { /\bAssertion .*?failed\b/ } @$lines) {
        chomp(my $l = $line);
        fail("$name - $l");
    }
}


sub check_shutdown_error_log ($$) {
    my ($block, $dry_run) = @_;

    my $name = $block->name;
    my $lines = error_log_data();

    if (defined $block->shutdown_error_log) {
        my $pats = as_pattern_list($block->shutdown_error_log);

        for my $line (@$lines) {
            for my $pat (@$pats) {
                next unless defined $pat && line_matches($line, $pat);
                pass("$name - pattern \"$pat\" matches a line in error.log");
                undef $pat;
            }
        }

        fail("$name - pattern \"$_\" should match a line in error.log")
            for grep { defined } @$pats;
    }

    if (defined $block->no_shutdown_error_log) {
        my $pats = as_pattern_list($block->no_shutdown_error_log);
        my %found;

        for my $line (@$lines) {
            for my $pat (@$pats) {
                next unless line_matches($line, $pat);
                next if $found{$pat}++;
                fail("$name - pattern \"" . fmt_str($pat) . "\" should not"
                     . " match any line in error.log but matches line \""
                     . fmt_str($line) . "\"");
            }
        }

        pass("$name - pattern \"" . fmt_str($_) . "\" does not match a line"
             . " in error.log") for grep { !$found{$_} } @$pats;
    }
}


sub run_block_requests ($$$) {
    my ($block, $dry_run, $repeated_req_idx) = @_;

    my $name = $block->name;
    my $reqs = get_req_from_block($block);

    bail_out("$name - request empty") unless @$reqs;

    my $timeout = parse_time($block->timeout);
    $timeout = timeout() unless defined $timeout;

    my $pipelined = $block->pipelined_requests;
    my $need_array = $pipelined ? 1 : @$reqs > 1;
    my $res;

    for my $req_idx (0 .. $#$reqs) {
        my $packets = $reqs->[$req_idx];
        my $head_req = join('', @$packets) =~ /^\s*HEAD\s/;
        my $raw = send_request($packets, $block->raw_request_middle_delay,
                               $timeout, $block);

        $raw = '' unless defined $raw;

        my $count = $pipelined ? @$pipelined : 1;

        for my $i (0 .. $count - 1) {
            my $idx = $pipelined ? $i : $req_idx;
            my ($raw_headers, $left);

            if (!defined $block->ignore_response) {
                ($res, $raw_headers, $left) = parse_response($name, $raw,
                                                             $head_req);

                if (!$pipelined && defined $left && $left ne '') {
                    (my $shown = $left) =~ s/([\0-\037\200-\377])/
                                             sprintf('\x{%02x}', ord $1)/eg;
                    warn "WARNING: $name - unexpected extra bytes after last"
                         . " chunk in response: \"$shown\"\n";
                }

                check_error_code($block, $res, $dry_run, $idx, $need_array);
                check_raw_response_headers($block, $raw_headers, $dry_run,
                                           $idx, $need_array);
                check_response_headers($block, $res, $raw_headers, $dry_run,
                                       $idx, $need_array);
                transform_response_body($block, $res, $idx);
                check_response_body($block, $res, $dry_run, $idx,
                                    $repeated_req_idx, $need_array);
            }

            $raw = defined $left ? $left : '';

            if ($i < $count - 1 || $req_idx < $#$reqs) {
                sleep $block->wait if $block->wait;
                check_error_log($block, $res, $dry_run, $repeated_req_idx,
                                $need_array);
            }
        }
    }

    sleep $block->wait if $block->wait;

    check_error_log($block, $res, $dry_run, $repeated_req_idx, $need_array);
}

1;
