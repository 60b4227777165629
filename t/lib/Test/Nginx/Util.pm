package Test::Nginx::Util;

# The server side of the test harness: settings, the generated nginx.conf,
# the server root, starting and stopping nginx, and reading its error log.
# It follows the conventions of Test::Nginx (openresty/test-nginx), so the
# same .t files run under either.

use strict;
use warnings;

use base 'Exporter';

use Cwd ();
use File::Path qw(make_path remove_tree);
use File::Spec ();
use IO::Socket::INET ();
use List::Util qw(shuffle);
use POSIX qw(SIGQUIT SIGKILL SIGTERM WNOHANG);
use Time::HiRes qw(sleep time);
use Test::More ();

our $VERSION = '0.01';

our @EXPORT = qw(
    run_tests run_test
    repeat_each no_shuffle no_long_string no_root_location
    workers worker_connections log_level
    master_on master_off master_process_enabled
    server_port server_port_for_client server_addr server_name
    server_root html_dir timeout config_preamble env_to_nginx
    add_block_preprocessor add_cleanup_handler add_test_cleanup_handler
    bail_out is_str expand_env_in_text parse_time sleep_time
    error_log_data get_pid_from_pidfile is_running
    $ServerPort $ServerPortForClient $ServRoot $PidFile $ConfFile
    $RepeatEach $NoLongString $RunBlockRequests $CheckErrorLog
    $CheckShutdownErrorLog
);

our $NginxBinary   = $ENV{TEST_NGINX_BINARY} || 'nginx';
our $LoadModules   = $ENV{TEST_NGINX_LOAD_MODULES};
our $Workers       = 1;
our $WorkerConnections = 64;
our $LogLevel      = $ENV{TEST_NGINX_LOG_LEVEL} || 'debug';
our $MasterProcessEnabled = $ENV{TEST_NGINX_MASTER_PROCESS} || 'off';
our $DaemonEnabled = 'on';
our $ServerAddr    = '127.0.0.1';
our $ServerName    = 'localhost';
our $ServerPort    = $ENV{TEST_NGINX_SERVER_PORT} || $ENV{TEST_NGINX_PORT}
                     || 1984;
our $ServerPortForClient = $ENV{TEST_NGINX_CLIENT_PORT} || $ServerPort;
our $Timeout       = $ENV{TEST_NGINX_TIMEOUT} || 3;
our $TestNginxSleep = $ENV{TEST_NGINX_SLEEP} || 0.015;
our $NoShuffle     = $ENV{TEST_NGINX_NO_SHUFFLE} || 0;
our $RepeatEach    = 1;
our $NoLongString;
our $NoRootLocation = 0;
our $ConfigPreamble = '';
our @EnvToNginx;

# Memory checking (util/test-sanitized.sh runs the suite both ways).
#
# TEST_NGINX_USE_VALGRIND: as in Test::Nginx, nginx runs under valgrind in
# the foreground (daemon off) and is stopped after every block so that its
# leaks are reported there. "1" (any number) means
# "--tool=memcheck --leak-check=full ..." plus ./valgrind.suppress when that
# file exists; any other value is the list of valgrind options itself.
# Valgrind writes to the test's stderr, after the block's name.
# TEST_NGINX_VALGRIND_EXIT_ON_FIRST_ERR adds
# --exit-on-first-error=yes --error-exitcode=1 (numeric mode).
#
# TEST_NGINX_CHECK_SANITIZER: nginx is built with ASan/UBSan; a sanitizer
# report (ASan, LeakSanitizer, UBSan "runtime error:") in an error log of
# the test's nginx (or of the second nginx a test runs, in the server root
# with a digit appended) or in the sanitizers' log_path files fails a test
# of the block that produced it, the report shown as diagnostics.
our $UseValgrind = $ENV{TEST_NGINX_USE_VALGRIND};
our $ValgrindExitOnFirstErr = $ENV{TEST_NGINX_VALGRIND_EXIT_ON_FIRST_ERR};
our $ValgrindStartTimeout = 60;
our $ValgrindStopTimeout = 60;
our $CheckSanitizer = $ENV{TEST_NGINX_CHECK_SANITIZER};

undef $UseValgrind if defined $UseValgrind
                      && ($UseValgrind eq '' || $UseValgrind eq '0');

if ($UseValgrind) {
    # a foreground nginx, a child of the test: what valgrind needs
    $DaemonEnabled = 'off';
}

our @BlockPreprocessors;
our @CleanupHandlers;
our @TestCleanupHandlers;

# Set by Test::Nginx::Socket: how a block's requests are run and checked.
our ($RunBlockRequests, $CheckErrorLog, $CheckShutdownErrorLog);

our $ServRoot = $ENV{TEST_NGINX_SERVROOT}
                || File::Spec->rel2abs('t/servroot');
$ENV{TEST_NGINX_SERVER_ROOT} = $ServRoot;

our $LogDir     = "$ServRoot/logs";
our $ErrLogFile = "$LogDir/error.log";
our $AccLogFile = "$LogDir/access.log";
our $HtmlDir    = "$ServRoot/html";
our $ConfDir    = "$ServRoot/conf";
our $ConfFile   = "$ConfDir/nginx.conf";
our $PidFile    = "$LogDir/nginx.pid";

our $ErrLogFilePos = 0;
our $NginxChild;
our $PrevConfig;
our $PrevBlock;
our $RandPorts = {};

my $MainPid = $$;
my %UsedRandPorts;

# Adopt daemonized nginx (PR_SET_CHILD_SUBREAPER) so that its exited
# processes are reaped here instead of lingering as zombies.
eval {
    local $SIG{__WARN__} = sub {};
    require 'syscall.ph';
    syscall(SYS_prctl(), 36, 1, 0, 0, 0);
};


sub repeat_each (@) { $RepeatEach = shift if @_; return $RepeatEach }
sub no_shuffle () { $NoShuffle = 1 }
sub no_long_string () { $NoLongString = 1 }
sub no_root_location () { $NoRootLocation = 1 }
sub workers (@) { $Workers = shift if @_; return $Workers }
sub worker_connections (@) {
    $WorkerConnections = shift if @_;
    return $WorkerConnections;
}
sub log_level (@) { $LogLevel = shift if @_; return $LogLevel }
sub master_on () { $MasterProcessEnabled = 'on' }
sub master_off () { $MasterProcessEnabled = 'off' }
sub master_process_enabled (@) {
    $MasterProcessEnabled = (shift() ? 'on' : 'off') if @_;
    return $MasterProcessEnabled;
}
sub server_port (@) { $ServerPort = shift if @_; return $ServerPort }
sub server_port_for_client (@) {
    $ServerPortForClient = shift if @_;
    return $ServerPortForClient;
}
sub server_addr (@) { $ServerAddr = shift if @_; return $ServerAddr }
sub server_name (@) { $ServerName = shift if @_; return $ServerName }
sub server_root () { return $ServRoot }
sub html_dir () { return $HtmlDir }
sub timeout (@) { $Timeout = shift if @_; return $Timeout }
sub sleep_time () { return $TestNginxSleep }
sub config_preamble ($) { $ConfigPreamble = shift }

sub env_to_nginx (@) {
    die "env_to_nginx: no arguments specified\n" unless @_;
    for my $v (@_) {
        die "env_to_nginx: bad argument value: $v\n"
            if $v !~ /^[A-Za-z_]/ || $v =~ /\n/;
        push @EnvToNginx, $v;
    }
}

sub add_block_preprocessor (&) { unshift @BlockPreprocessors, shift }
sub add_cleanup_handler ($) { unshift @CleanupHandlers, shift }
sub add_test_cleanup_handler ($) { unshift @TestCleanupHandlers, shift }


sub is_str (@) {
    my ($got, $expected, $desc) = @_;

    if (ref $expected && ref $expected eq 'Regexp') {
        return Test::More::like($got, $expected, $desc);
    }

    return Test::More::is($got, $expected, $desc);
}


sub bail_out (@) {
    cleanup();
    Test::More::BAIL_OUT(join '', @_);
}


# "500ms" -> 0.5, "2s" -> 2, "1.5" -> 1.5
sub parse_time ($) {
    my $t = shift;

    return undef unless defined $t;

    if ($t =~ s/([^_a-zA-Z])ms$/$1/) {
        return $t / 1000;
    }

    $t =~ s/([^_a-zA-Z])s$/$1/;
    return $t;
}


# A zombie counts as gone: init may never reap it.
sub is_running ($) {
    my $pid = shift;

    return 0 unless $pid;

    waitpid $pid, WNOHANG;
    return 0 unless kill 0, $pid;

    if (open my $in, '<', "/proc/$pid/stat") {
        my $stat = <$in>;
        close $in;
        return 0 if defined $stat && $stat =~ /^\d+ \(.*\) Z/s;
    }

    return 1;
}


sub get_pid_from_pidfile ($) {
    my $name = shift;

    open my $in, '<', $PidFile
        or bail_out("$name - Failed to open the pid file $PidFile: $!");
    my $pid = do { local $/; <$in> };
    close $in;

    $pid = '' unless defined $pid;
    $pid =~ s/\s+//g;
    return $pid;
}


sub port_is_free ($) {
    my $port = shift;

    my $sock = IO::Socket::INET->new(
        LocalAddr => '127.0.0.1',
        LocalPort => $port,
        Proto     => 'tcp',
        ReuseAddr => 1,
        Listen    => 1,
    );
    return 0 unless $sock;
    close $sock;
    return 1;
}


sub rand_port () {
    for (1 .. 1000) {
        my $port = 10000 + int rand 50000;
        next if $port == $ServerPort || $UsedRandPorts{$port};
        next unless port_is_free($port);
        $UsedRandPorts{$port} = 1;
        return $port;
    }

    bail_out("Cannot find an available listening port number.");
}


# Replaces $TEST_NGINX_FOO by the environment variable, and
# $TEST_NGINX_RAND_PORT_N by a free port, the same one within a block.
sub expand_env_in_text ($$$) {
    my ($text, $name, $rand_ports) = @_;

    return undef unless defined $text;

    $text =~ s{\$(TEST_NGINX_[_A-Z0-9]+)}{
        my $var = $1;
        my $value;

        if ($var =~ /^TEST_NGINX_RAND_PORT_\d+$/) {
            $rand_ports->{$var} = rand_port() unless $rand_ports->{$var};
            $value = $rand_ports->{$var};

        } else {
            bail_out("$name - No environment $var defined.\n")
                unless defined $ENV{$var};
            $value = $ENV{$var};
        }

        $value;
    }ge;

    return $text;
}


sub error_log_data () {
    # lines logged after the response was read (log phase, close) come late
    sleep $TestNginxSleep * 3;

    open my $in, '<', $ErrLogFile or return [];
    seek $in, $ErrLogFilePos, 0 if $ErrLogFilePos > 0;
    my @lines = <$in>;
    $ErrLogFilePos = tell $in;
    close $in;

    return \@lines;
}


sub setup_server_root () {
    if (-d $ServRoot) {
        remove_tree($ConfDir, $LogDir, $HtmlDir, glob("$ServRoot/*_temp"),
                    glob("$ServRoot/*_cache"));
    }

    for my $dir ($ServRoot, $LogDir, $HtmlDir, $ConfDir) {
        next if -d $dir;
        mkdir $dir or bail_out("Failed to do mkdir $dir: $!\n");
    }

    open my $out, '>', "$HtmlDir/index.html"
        or bail_out("Can't open $HtmlDir/index.html for writing: $!\n");
    print $out '<html><head><title>It works!</title></head>'
               . '<body>It works!</body></html>';
    close $out;
}


sub write_user_files ($$) {
    my ($block, $rand_ports) = @_;

    my $name  = $block->name;
    my $files = $block->user_files;

    return unless defined $files;

    if (!ref $files) {
        my @list;
        for my $line (split /^/m, $files) {
            if ($line =~ /^>>> (\S+)(?:\s+(.+))?/) {
                push @list, [$1, '', $2];
                next;
            }
            $list[-1][1] .= $line if @list;
        }
        $files = \@list;

    } elsif (ref $files ne 'ARRAY') {
        bail_out("$name - wrong value type: ", ref $files,
                 ", only scalar or ARRAY are accepted");
    }

    for my $file (@$files) {
        my ($fname, $body, $date) = @$file;
        my $path = $fname =~ m{^/} ? $fname : "$HtmlDir/$fname";

        if ($path =~ m{(.*)/} && !-d $1) {
            make_path($1);
        }

        $body = expand_env_in_text(defined $body ? $body : '', $name,
                                   $rand_ports);

        open my $out, '>', $path
            or bail_out("$name - Cannot open $path for writing: $!\n");
        binmode $out;
        print $out $body;
        close $out;

        if ($date) {
            system("TZ=GMT touch -t '$date' '$path'") == 0
                or bail_out("$name - Failed to set the date of $path\n");
        }
    }
}


sub write_config_file ($$$) {
    my ($block, $config, $rand_ports) = @_;

    my $name = $block->name;

    my $main_config = expand_env_in_text($block->main_config, $name,
                                         $rand_ports);
    my $post_main_config = expand_env_in_text($block->post_main_config,
                                              $name, $rand_ports);
    my $http_config = expand_env_in_text($block->http_config, $name,
                                         $rand_ports);
    my $server_name = $block->server_name;

    $main_config = '' unless defined $main_config;
    $post_main_config = '' unless defined $post_main_config;
    $http_config = '' unless defined $http_config;
    $config = '' unless defined $config;
    $server_name = $ServerName unless defined $server_name;

    if ($LoadModules) {
        my @modules = map { "load_module $_;" } grep { $_ } split /\s+/,
                      $LoadModules;
        $main_config = join ' ', @modules, $main_config;
    }

    my $log_level = $block->log_level || $LogLevel;

    my $temp_paths = '';
    for my $kind (qw(client_body proxy fastcgi uwsgi scgi)) {
        next if $http_config =~ /\b${kind}_temp_path\b/;
        $temp_paths .= " ${kind}_temp_path $ServRoot/${kind}_temp;";
    }

    my $env = '';
    for my $v (@EnvToNginx) {
        $env .= $v =~ /\s/ ? "env '$v';\n" : "env $v;\n";
    }

    my $root_location = $NoRootLocation ? '' : <<_EOC_;
        location / {
            root $HtmlDir;
            index index.html index.htm;
        }
_EOC_

    # workers started by root would run as nobody, which cannot write
    # the server root
    my $user = $> == 0 ? "user root;\n" : '';

    (my $quoted_server_name = $server_name) =~ s/(['\\])/\\$1/g;

    open my $out, '>', $ConfFile
        or bail_out("Can't open $ConfFile for writing: $!\n");

    print $out <<_EOC_;
worker_processes  $Workers;
daemon $DaemonEnabled;
master_process $MasterProcessEnabled;
error_log $ErrLogFile $log_level;
pid       $PidFile;
$env
$main_config

http {
    access_log $AccLogFile;$temp_paths

    default_type text/plain;
    keepalive_timeout  68000ms;

$http_config

    server {
        listen          $ServerPort;
        server_name     '$quoted_server_name';

        client_max_body_size 30M;

        # Begin preamble config...
$ConfigPreamble
        # End preamble config...

        # Begin test case config...
$config
        # End test case config.

$root_location    }
}

$post_main_config

events {
    accept_mutex off;

    worker_connections  $WorkerConnections;
}
$user
_EOC_

    close $out;
}


# Every process of nginx's process group (master, workers, cache processes).
sub process_group_members ($) {
    my $pgid = shift;
    my @pids;

    opendir my $dh, '/proc' or return ();
    for my $pid (grep { /^\d+$/ } readdir $dh) {
        open my $in, '<', "/proc/$pid/stat" or next;
        my $stat = <$in>;
        close $in;
        next unless defined $stat && $stat =~ /\) (\S) (\d+) (\d+)/;
        push @pids, $pid if $3 == $pgid && $1 ne 'Z';
    }
    closedir $dh;

    return @pids;
}


# QUIT (graceful), wait, then TERM, then KILL the whole process group:
# nginx is a session leader (daemon), its workers share its group.
sub kill_process ($$$) {
    my ($pid, $wait, $name) = @_;

    return unless is_running($pid);

    kill SIGQUIT, $pid;

    # valgrind's leak check runs when the process exits
    my $left = !$wait ? 0 : $UseValgrind ? $ValgrindStopTimeout : timeout();
    while ($left > 0 && is_running($pid)) {
        waitpid $pid, WNOHANG;
        sleep 0.02;
        $left -= 0.02;
    }

    if (is_running($pid)) {
        warn "$name - timeout when waiting for the process $pid to exit\n";
        kill SIGTERM, $pid;
        sleep 0.3;
    }

    my @group = ($pid, process_group_members($pid));
    if (grep { is_running($_) } @group) {
        warn "$name - WARNING: killing the process group $pid with force\n";
        kill SIGKILL, -$pid;
        kill SIGKILL, grep { is_running($_) } @group;
        waitpid $pid, WNOHANG;
    }
}


sub stop_nginx ($) {
    my $name = shift;

    if (-f $PidFile) {
        my $pid = get_pid_from_pidfile($name);

        if ($pid ne '' && is_running($pid)) {
            kill_process($pid, 1, $name);
        }

        # also workers whose master died before them
        if ($pid ne '') {
            my @left = process_group_members($pid);
            kill SIGKILL, @left if @left;
        }

        unlink $PidFile if -f $PidFile;
    }

    wait_nginx_child($name) if defined $NginxChild;
}


# nginx under valgrind is a child of the test: once it is gone (the test
# itself may have stopped it), valgrind has written all it had to say.
sub wait_nginx_child ($) {
    my $name = shift;

    my $left = $ValgrindStopTimeout;

    while (1) {
        my $r = waitpid $NginxChild, WNOHANG;
        last if $r == $NginxChild || $r == -1;

        if ($left <= 0) {
            warn "$name - WARNING: nginx under valgrind ($NginxChild) did"
                 . " not exit, killing it\n";
            kill SIGKILL, -$NginxChild;
            waitpid $NginxChild, 0;
            last;
        }

        sleep 0.05;
        $left -= 0.05;
    }

    undef $NginxChild;
}


sub tail_error_log () {
    open my $in, '<', $ErrLogFile or return '';
    my @lines = <$in>;
    close $in;
    splice @lines, 0, @lines - 20 if @lines > 20;
    return join '', @lines;
}


sub valgrind_command ($) {
    my $cmd = shift;

    if ($UseValgrind !~ /^\d+$/) {
        return "valgrind -q $UseValgrind $cmd";
    }

    my $opts = '--tool=memcheck --leak-check=full --keep-debuginfo=yes'
               . ' --show-possibly-lost=no';
    $opts .= ' --exit-on-first-error=yes --error-exitcode=1'
        if $ValgrindExitOnFirstErr;
    $opts .= ' --suppressions=valgrind.suppress' if -f 'valgrind.suppress';

    return "valgrind --num-callers=100 -q $opts --gen-suppressions=all $cmd";
}


# nginx under valgrind: a foreground child of the test, in a process group
# of its own; ready once it has written its pid file (it listens by then).
sub start_nginx_valgrind ($) {
    my $name = shift;

    my $cmd = valgrind_command("$NginxBinary -e $ErrLogFile -p $ServRoot/"
                               . " -c $ConfFile");

    unlink $PidFile;

    # valgrind's reports follow the name of the block on stderr
    warn "$name\n";

    my $pid = fork;
    bail_out("$name - fork() failed: $!") unless defined $pid;

    if ($pid == 0) {
        setpgrp;
        open STDOUT, '>', '/dev/null';
        exec "exec $cmd" or POSIX::_exit(127);
    }

    $NginxChild = $pid;

    my $deadline = time + $ValgrindStartTimeout;

    until (-s $PidFile) {
        if (!is_running($pid)) {
            bail_out("$name - nginx under valgrind exited at start"
                     . " (\"$cmd\"):\n" . tail_error_log());
        }

        if (time > $deadline) {
            bail_out("$name - nginx under valgrind not up after"
                     . " $ValgrindStartTimeout s:\n" . tail_error_log());
        }

        sleep 0.05;
    }

    sleep $TestNginxSleep;
}


sub start_nginx ($) {
    my $name = shift;

    return start_nginx_valgrind($name) if $UseValgrind;

    # a sanitizer report that comes before nginx has redirected stderr to
    # its error log goes to the error log as well
    my $stderr = $CheckSanitizer ? "2>> $ErrLogFile" : '';

    my $cmd = "$NginxBinary -e $ErrLogFile -p $ServRoot/ -c $ConfFile"
              . " > /dev/null $stderr";

    my $waited = 0;

    while (1) {
        system($cmd);
        last if $? == 0;

        # the previous test's port may still be held for a moment
        if ($waited >= 3) {
            bail_out("$name - Cannot start nginx using command \"$cmd\""
                     . " (status code $?):\n" . tail_error_log());
        }

        sleep 0.2;
        $waited += 0.2;
    }

    # the daemon writes its pid file after the command returns
    for (1 .. 100) {
        last if -s $PidFile;
        sleep 0.01;
    }

    sleep $TestNginxSleep;
}


# Error logs of the test's nginx and of second nginx instances a test runs
# (server root with a digit appended), then the files of the sanitizers'
# log_path prefixes (the "prefix.PID" files).
sub sanitizer_report_files () {
    my @files = ($ErrLogFile);

    my ($dir, $base) = $ServRoot =~ m{^(.*)/([^/]+)/*$};
    if (defined $dir && opendir my $dh, $dir) {
        push @files, map { "$dir/$_/logs/error.log" }
                     sort grep { /^\Q$base\E\d+$/ } readdir $dh;
        closedir $dh;
    }

    my %prefixes;
    for my $var (qw(ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS)) {
        next unless defined $ENV{$var};
        $prefixes{$1} = 1 while $ENV{$var} =~ /(?:^|[:\s])log_path=([^:\s]+)/g;
    }

    for my $prefix (sort keys %prefixes) {
        next if $prefix eq 'stderr' || $prefix eq 'stdout';
        my ($pdir, $pbase) = $prefix =~ m{^(.*)/([^/]+)$} ? ($1, $2)
                                                          : ('.', $prefix);
        opendir my $dh, $pdir or next;
        push @files, map { "$pdir/$_" }
                     sort grep { /^\Q$pbase\E\.\d+/ } readdir $dh;
        closedir $dh;
    }

    return grep { -f $_ } @files;
}


# file => [device:inode, bytes already read, its first bytes]: a file
# removed and made again may get the same inode, not the same first line
my %SanitizerSeen;

sub file_head ($) {
    my $file = shift;

    open my $in, '<', $file or return '';
    my $head = '';
    read $in, $head, 256;
    close $in;

    return $head;
}

my $SanitizerStart = qr/==\d+==\s*ERROR: \w*Sanitizer|\bruntime error: /;

# The reports in some lines: [title, text], a report running until its
# SUMMARY line, the next report or a line of nginx's own.
sub sanitizer_reports ($) {
    my $lines = shift;
    my @reports;
    my $cur;

    for my $line (@$lines) {
        if ($line =~ $SanitizerStart) {
            push @reports, $cur if $cur;
            (my $title = $line) =~ s/^\s+|\s+$//g;
            $title =~ s/^==\d+==\s*//;
            $cur = [$title, $line];
            next;
        }

        next unless $cur;

        if ($line =~ m{^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[}) {
            push @reports, $cur;
            undef $cur;
            next;
        }

        $cur->[1] .= $line;

        if ($line =~ /^SUMMARY: /) {
            push @reports, $cur;
            undef $cur;
        }
    }

    push @reports, $cur if $cur;

    for my $r (@reports) {
        # the shadow memory dump helps no one reading a test log
        $r->[1] =~ s/^Shadow bytes around the buggy address:.*?(?=^SUMMARY: |\z)//ms;
    }

    return @reports;
}


# What the files hold before this test file runs (earlier runs, earlier
# test files) is not this test file's.
sub sanitizer_baseline () {
    return unless $CheckSanitizer;

    for my $file (sanitizer_report_files()) {
        my @st = stat $file or next;
        $SanitizerSeen{$file} = ["$st[0]:$st[1]", $st[7], file_head($file)];
    }
}


# Fails a test for every sanitizer report written since the last look.
sub check_sanitizer_reports ($$) {
    my ($name, $when) = @_;

    return unless $CheckSanitizer;

    for my $file (sanitizer_report_files()) {
        my @st = stat $file or next;
        my $id = "$st[0]:$st[1]";
        my $head = file_head($file);
        my $seen = $SanitizerSeen{$file};
        my $pos = $seen && $seen->[0] eq $id && $seen->[1] <= $st[7]
                  && substr($head, 0, length $seen->[2]) eq $seen->[2]
                  ? $seen->[1] : 0;

        next if $pos == $st[7];

        open my $in, '<', $file or next;
        seek $in, $pos, 0;
        my @lines = <$in>;
        $SanitizerSeen{$file} = [$id, tell $in, $head];
        close $in;

        for my $r (sanitizer_reports(\@lines)) {
            Test::More::fail("$name - no sanitizer report $when, but $file"
                             . " has: $r->[0]");
            Test::More::diag($r->[1]);
        }
    }
}


sub check_prev_block_shutdown_error_log () {
    my $block = $PrevBlock;

    return unless defined $block;

    undef $PrevBlock;

    if (defined $block->shutdown_error_log
        || defined $block->no_shutdown_error_log)
    {
        $CheckShutdownErrorLog->($block, undef);
    }
}


sub run_test ($) {
    my $block = shift;

    return if defined $block->SKIP;

    my $name = $block->name;
    my $rand_ports = {};
    $RandPorts = $rand_ports;

    my $config = expand_env_in_text($block->config, $name, $rand_ports);

    # under valgrind nginx stops after every block: one without a config of
    # its own starts it again with the previous config
    $config = $PrevConfig
        if !defined $config && $UseValgrind && !-f $PidFile;

    if (defined $config) {
        $PrevConfig = $config;

        stop_nginx($name);
        check_sanitizer_reports(defined $PrevBlock ? $PrevBlock->name
                                                   : $name, 'at nginx exit');
        check_prev_block_shutdown_error_log();

        setup_server_root();

        if (defined $block->post_setup_server_root) {
            eval $block->post_setup_server_root;
            bail_out("$name - post_setup_server_root failed: $@") if $@;
        }

        write_user_files($block, $rand_ports);
        write_config_file($block, $config, $rand_ports);
        start_nginx($name);

    } elsif (!defined $PrevConfig) {
        bail_out("$name - No '--- config' section specified and could not"
                 . " get previous one.");
    }

    if (defined $block->init) {
        eval $block->init;
        bail_out("$name - init failed: $@") if $@;
    }

    $ErrLogFilePos = 0;

    for my $i (0 .. $RepeatEach - 1) {
        $RunBlockRequests->($block, undef, $i);
    }

    check_sanitizer_reports($name, 'while it ran');

    if ($UseValgrind) {
        # its leaks are reported now, after this block's name
        stop_nginx($name);
        check_sanitizer_reports($name, 'at nginx exit');
    }
}


sub run_tests () {
    srand($$ + int(time() * 1000));

    $ENV{TEST_NGINX_SERVER_PORT} = $ServerPort
        unless defined $ENV{TEST_NGINX_SERVER_PORT};

    my @blocks = Test::Base::blocks();
    @blocks = shuffle @blocks unless $NoShuffle;

    sanitizer_baseline();

    for my $block (@blocks) {
        $_->($block) for @BlockPreprocessors;

        $block->set_value('name', "$0 " . $block->name);

        run_test($block);

        $_->($block) for @TestCleanupHandlers;

        $PrevBlock = $block;
    }

    cleanup();
}


sub cleanup () {
    return unless $$ == $MainPid;

    $_->() for @CleanupHandlers;
}


END {
    if ($$ == $MainPid) {
        local $?;

        my $last = defined $PrevBlock ? $PrevBlock->name : 'END';

        cleanup();
        stop_nginx('END');
        check_sanitizer_reports($last, 'at nginx exit');
        check_prev_block_shutdown_error_log();
    }
}


# Interrupted runs (Ctrl-C, prove timeouts) still stop nginx through END.
my %SigNum = (HUP => 1, INT => 2, TERM => 15);
for my $sig (keys %SigNum) {
    $SIG{$sig} = sub { exit 128 + $SigNum{$sig} } unless $SIG{$sig};
}

1;
