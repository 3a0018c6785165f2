# Sourced by scripts/test.sh and scripts/test-browser.sh. With JS_TESTS_STOP_ON_STDIN_EOF=1 (set
# by the Rust suite's tests/src/cases/js_client.rs, which starts the script as the leader of its
# own process group and holds its stdin open), the script's whole process group gets SIGTERM when
# stdin reaches EOF: the test process that started it is gone (the suite's time limit, Ctrl-C),
# so the tests stop and the browser test stops its cluster instead of running on unattended.
if [[ ${JS_TESTS_STOP_ON_STDIN_EOF:-} == 1 ]]; then
    # A background job's stdin would be /dev/null: hand it the script's stdin on another fd.
    exec {watch_fd}<&0
    (
        cat <&"$watch_fd" >/dev/null
        kill -TERM -- "-$$" 2>/dev/null
    ) >/dev/null 2>&1 &
    exec {watch_fd}<&-
    # The tests themselves never read stdin.
    exec </dev/null
fi
