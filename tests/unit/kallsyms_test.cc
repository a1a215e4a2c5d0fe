// Kallsyms on the live /proc/kallsyms and on a small file the test writes;
// tracefs' available_filter_functions (readable only as root with tracefs).
#include "tracer/kernel/kallsyms.h"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "tracer/kernel/tracefs.h"

using namespace pwru;

namespace {

std::string read_first_line(const char* path) {
    std::string line;
    std::getline(std::ifstream(path), line);
    return line;
}

// A file in the temp dir, removed at the end of the test.
struct TempFile {
    std::string path;
    explicit TempFile(const std::string& text) {
        path = (std::filesystem::temp_directory_path() / "pwru-kallsyms-XXXXXX").string();
        int fd = ::mkstemp(path.data());
        REQUIRE(fd >= 0);
        ::close(fd);
        std::ofstream(path) << text;
    }
    ~TempFile() { std::filesystem::remove(path); }
};

}  // namespace

TEST_CASE("Kallsyms loads the live /proc/kallsyms", "[unit]") {
    auto start = std::chrono::steady_clock::now();
    auto ks = Kallsyms::load();
    auto ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start);
    REQUIRE(ks.has_value());
    WARN(ks->size() << " text symbols loaded from /proc/kallsyms in " << ms.count() << " ms");
    CHECK(ks->size() > 10000);
    if (!ks->addresses_visible()) {
        WARN("skipping the address checks: /proc/kallsyms shows every address as 0 (euid "
             << ::geteuid() << ", kernel.kptr_restrict=" << read_first_line("/proc/sys/kernel/kptr_restrict") << ")");
        CHECK_FALSE(ks->address_of("ip_rcv"));
        CHECK(ks->symbolize(0x1234) == "0x1234");
        return;
    }
    auto ip_rcv = ks->address_of("ip_rcv");
    REQUIRE(ip_rcv);
    CHECK(ks->symbolize(*ip_rcv + 3) == "ip_rcv+0x3");
    REQUIRE(ks->find(*ip_rcv));
    CHECK(ks->find(*ip_rcv)->name == "ip_rcv");
    CHECK_FALSE(ks->address_of("pwru_no_such_symbol"));
}

TEST_CASE("Kallsyms parses text symbols, modules and boundaries", "[unit]") {
    // Unsorted, with data symbols to drop and two symbols at one address.
    TempFile file(
        "ffffffff81000100 T second\n"
        "ffffffff81000000 T first\n"
        "ffffffff81000000 T first_alias\n"
        "ffffffff81000080 D some_data\n"
        "ffffffff81000200 W weak_fn\n"
        "ffffffffc0000000 t mod_fn\t[mymod]\n"
        "ffffffffc0000040 T second\t[othermod]\n"
        "ffffffffc0000100 b mod_bss\t[mymod]\n"
        "not a line\n"
        "ffffffffc0000200 t last_no_newline\t[bpf]");
    auto ks = Kallsyms::load(file.path);
    REQUIRE(ks.has_value());
    CHECK(ks->addresses_visible());
    CHECK(ks->size() == 7);

    CHECK(ks->find(0xffffffff80ffffffull) == nullptr);
    CHECK(ks->symbolize(0xffffffff80ffffffull) == "0xffffffff80ffffff");
    REQUIRE(ks->find(0xffffffff81000000ull));
    CHECK(ks->find(0xffffffff81000000ull)->name == "first");  // the first listed at a tie
    CHECK(ks->symbolize(0xffffffff810000ffull) == "first+0xff");
    CHECK(ks->symbolize(0xffffffff81000100ull) == "second+0x0");
    CHECK(ks->symbolize(0xffffffff81000280ull) == "weak_fn+0x80");
    CHECK(ks->symbolize(0xffffffffc0000010ull) == "mod_fn+0x10 [mymod]");
    CHECK(ks->symbolize(0xffffffffc0000210ull) == "last_no_newline+0x10 [bpf]");
    CHECK(ks->address_of("second") == 0xffffffff81000100ull);  // vmlinux before the module
    CHECK(ks->address_of("mod_fn") == 0xffffffffc0000000ull);
    CHECK_FALSE(ks->address_of("some_data"));
    CHECK_FALSE(ks->address_of("mod_bss"));
}

TEST_CASE("Kallsyms: hidden addresses and a missing file", "[unit]") {
    TempFile hidden("0000000000000000 T first\n0000000000000000 t mod_fn\t[mymod]\n");
    auto ks = Kallsyms::load(hidden.path);
    REQUIRE(ks.has_value());
    CHECK(ks->size() == 2);
    CHECK_FALSE(ks->addresses_visible());
    CHECK(ks->find(0x10) == nullptr);
    CHECK(ks->symbolize(0x10) == "0x10");
    CHECK_FALSE(ks->address_of("first"));

    auto missing = Kallsyms::load("/nonexistent/kallsyms");
    REQUIRE_FALSE(missing.has_value());
    CHECK(missing.error().err == ENOENT);
    CHECK(missing.error().message().find('\n') == std::string::npos);
}

TEST_CASE("tracefs available_filter_functions is read or refused in one line", "[unit]") {
    auto dir = tracefs_dir();
    WARN("tracefs: " << (dir ? *dir : std::string("none (not mounted, cannot mount)")));
    auto start = std::chrono::steady_clock::now();
    auto funcs = read_available_filter_functions();
    auto ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start);
    if (funcs) {
        WARN(funcs->size() << " functions in available_filter_functions, read in " << ms.count() << " ms");
        CHECK(funcs->size() > 1000);
        CHECK(funcs->count("ip_rcv"));
        CHECK(std::none_of(funcs->begin(), funcs->end(),
                           [](const std::string& f) { return f.find_first_of(" \t[") != std::string::npos; }));
    } else {
        const Error& e = funcs.error();
        WARN("available_filter_functions not readable (errno " << e.err << "): " << e.message());
        CHECK(e.err != 0);
        CHECK_FALSE(e.what.empty());
        CHECK(e.message().find('\n') == std::string::npos);
    }
}
