// --output-file rotation: FILE, FILE.1 ... FILE.N, records never split.
#include <catch2/catch.hpp>
#include <fstream>

#include "support/test_files.h"
#include "tracer/output/event_sink.h"

using namespace pwru;

namespace {

std::string slurp(const std::filesystem::path& p) {
    std::ifstream in(p);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

}  // namespace

TEST_CASE("the output file rotates by size and keeps N backups", "[unit]") {
    test::TempDir dir{"pwru-sink"};
    auto path = (dir.path / "events.txt").string();
    {
        auto sink = EventSink::open(path, {.max_bytes = 100, .max_backups = 2});
        REQUIRE(sink);
        for (int i = 0; i < 10; ++i) REQUIRE(sink->write_line(std::string(39, 'a' + i)));  // 40 bytes a line
    }
    // 2 lines a file: j i | h g | f e ; older ones dropped.
    CHECK(slurp(path) == std::string(39, 'i') + "\n" + std::string(39, 'j') + "\n");
    CHECK(slurp(path + ".1") == std::string(39, 'g') + "\n" + std::string(39, 'h') + "\n");
    CHECK(slurp(path + ".2") == std::string(39, 'e') + "\n" + std::string(39, 'f') + "\n");
    CHECK_FALSE(std::filesystem::exists(path + ".3"));
}

TEST_CASE("max backups 0 keeps every rotated file", "[unit]") {
    test::TempDir dir{"pwru-sink"};
    auto path = (dir.path / "all.txt").string();
    {
        auto sink = EventSink::open(path, {.max_bytes = 50, .max_backups = 0});
        REQUIRE(sink);
        for (int i = 0; i < 5; ++i) REQUIRE(sink->write_line(std::string(39, 'a' + i)));
    }
    CHECK(slurp(path + ".4") == std::string(39, 'a') + "\n");
    CHECK(slurp(path) == std::string(39, 'e') + "\n");
}

TEST_CASE("a record larger than the limit still goes out whole", "[unit]") {
    test::TempDir dir{"pwru-sink"};
    auto path = (dir.path / "big.txt").string();
    {
        auto sink = EventSink::open(path, {.max_bytes = 10, .max_backups = 1});
        REQUIRE(sink);
        REQUIRE(sink->write_line(std::string(50, 'x')));
    }
    CHECK(slurp(path) == std::string(50, 'x') + "\n");
}

TEST_CASE("an unwritable output file is a clear error", "[unit]") {
    auto sink = EventSink::open("/nonexistent-dir/events.txt", {});
    REQUIRE_FALSE(sink);
    CHECK(sink.error().what.find("--output-file /nonexistent-dir/events.txt") != std::string::npos);
}

TEST_CASE("a /proc file as output is refused at open, not at the first event", "[unit]") {
    // Root may open /proc/version for writing; every write then fails.
    auto sink = EventSink::open("/proc/version", {});
    REQUIRE_FALSE(sink);
    CHECK(sink.error().what.find("--output-file /proc/version") != std::string::npos);
    CHECK(sink.error().what.find('\n') == std::string::npos);
}
