// --output-file-max-age and --output-file-compress: backups removed by age
// (file modification times set here), gzipped backups that decompress to
// what was rotated, and bad values refused before anything runs.
#include <zlib.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>

#include "support/test_files.h"
#include "tracer/cli_options.h"
#include "tracer/output/event_sink.h"

using namespace pwru;
namespace fs = std::filesystem;

namespace {

std::string slurp(const fs::path& p) {
    std::ifstream in(p);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

void write_file(const fs::path& p, const std::string& text) { std::ofstream(p) << text; }

void age_file(const fs::path& p, std::chrono::hours age) {
    fs::last_write_time(p, fs::file_time_type::clock::now() - age);
}

// The decompressed content of a gzip file, or nullopt if it is not valid gzip.
std::optional<std::string> gunzip(const fs::path& p) {
    gzFile in = gzopen(p.c_str(), "rb");
    if (!in) return std::nullopt;
    std::string out;
    char buf[4096];
    int n;
    while ((n = gzread(in, buf, sizeof(buf))) > 0) out.append(buf, static_cast<size_t>(n));
    bool ok = n == 0 && gzclose(in) == Z_OK;
    // gzread on a file that is not gzip returns it as is: check the magic too.
    std::ifstream raw(p, std::ios::binary);
    unsigned char magic[2] = {};
    raw.read(reinterpret_cast<char*>(magic), 2);
    if (!ok || magic[0] != 0x1f || magic[1] != 0x8b) return std::nullopt;
    return out;
}

std::string line_of(char c) { return std::string(39, c) + "\n"; }  // 40 bytes

Result<CliConfig> parse(std::vector<const char*> args) {
    args.insert(args.begin(), "pwru");
    return parse_cli(static_cast<int>(args.size()), args.data());
}

}  // namespace

TEST_CASE("rotated backups older than the maximum age are removed", "[unit]") {
    test::TempDir dir{"pwru-sink-age"};
    const fs::path path = dir.path / "events.txt";
    // An earlier run's backups: FILE.1 is 1 day old, FILE.2 3 days, FILE.3 10 days.
    write_file(path.string() + ".1", "one day\n");
    write_file(path.string() + ".2", "three days\n");
    write_file(path.string() + ".3.gz", "ten days\n");
    age_file(path.string() + ".1", std::chrono::hours(24));
    age_file(path.string() + ".2", std::chrono::hours(72));
    age_file(path.string() + ".3.gz", std::chrono::hours(240));
    write_file(dir.path / "events.txt.other", "not a backup\n");
    age_file(dir.path / "events.txt.other", std::chrono::hours(1000));

    auto sink = EventSink::open(path.string(), {.max_bytes = 100, .max_age_days = 2});
    REQUIRE(sink);
    // At open: the 3- and 10-day-old backups go, the 1-day-old stays.
    CHECK(fs::exists(path.string() + ".1"));
    CHECK_FALSE(fs::exists(path.string() + ".2"));
    CHECK_FALSE(fs::exists(path.string() + ".3.gz"));
    CHECK(fs::exists(dir.path / "events.txt.other"));  // not ours

    // A rotation shifts the survivor to .2 and ages are checked again.
    for (char c : {'a', 'b', 'c'}) REQUIRE(sink->write_line(std::string(39, c)));
    sink->flush();
    CHECK(slurp(path) == line_of('c'));
    CHECK(slurp(path.string() + ".1") == line_of('a') + line_of('b'));
    CHECK(slurp(path.string() + ".2") == "one day\n");
    // Once it is older than the limit, the next rotation removes it.
    age_file(path.string() + ".2", std::chrono::hours(49));
    for (char c : {'d', 'e'}) REQUIRE(sink->write_line(std::string(39, c)));
    CHECK(slurp(path.string() + ".1") == line_of('c') + line_of('d'));
    CHECK(slurp(path.string() + ".2") == line_of('a') + line_of('b'));
    CHECK_FALSE(fs::exists(path.string() + ".3"));
}

TEST_CASE("max age 0 keeps backups whatever their age", "[unit]") {
    test::TempDir dir{"pwru-sink-age0"};
    const fs::path path = dir.path / "events.txt";
    write_file(path.string() + ".1", "old\n");
    age_file(path.string() + ".1", std::chrono::hours(24 * 400));
    auto sink = EventSink::open(path.string(), {.max_bytes = 100, .max_age_days = 0});
    REQUIRE(sink);
    for (char c : {'a', 'b', 'c'}) REQUIRE(sink->write_line(std::string(39, c)));
    CHECK(slurp(path.string() + ".2") == "old\n");
}

TEST_CASE("compressed backups are gzip of exactly what was rotated", "[unit]") {
    test::TempDir dir{"pwru-sink-gz"};
    const fs::path path = dir.path / "events.txt";
    {
        auto sink = EventSink::open(path.string(), {.max_bytes = 100, .max_backups = 2, .compress = true});
        REQUIRE(sink);
        for (int i = 0; i < 7; ++i) REQUIRE(sink->write_line(std::string(39, static_cast<char>('a' + i))));
    }
    // 2 lines a file: g | e f | c d | (a b dropped: 2 backups)
    CHECK(slurp(path) == line_of('g'));
    CHECK_FALSE(fs::exists(path.string() + ".1"));  // only the compressed form stays
    CHECK(gunzip(path.string() + ".1.gz") == line_of('e') + line_of('f'));
    CHECK(gunzip(path.string() + ".2.gz") == line_of('c') + line_of('d'));
    CHECK_FALSE(fs::exists(path.string() + ".3.gz"));
    CHECK_FALSE(fs::exists(path.string() + ".1.gz.tmp"));
    // really compressed: a backup of many equal lines is much smaller than its text
    {
        auto sink = EventSink::open((dir.path / "big.txt").string(), {.max_bytes = 64 << 10, .compress = true});
        REQUIRE(sink);
        for (int i = 0; i < 2000; ++i) REQUIRE(sink->write_line(std::string(99, 'x')));
    }
    auto big = gunzip(dir.path / "big.txt.1.gz");
    REQUIRE(big);
    CHECK(big->size() > 60000);
    CHECK(fs::file_size(dir.path / "big.txt.1.gz") < big->size() / 20);
}

TEST_CASE("rotation flags: pwru's names, bad values refused", "[unit]") {
    auto c = parse({"--output-file", "/tmp/x", "--output-file-max-age", "7", "--output-file-compress"});
    REQUIRE(c);
    CHECK(c->rotation.max_age_days == 7);
    CHECK(c->rotation.compress);
    auto d = parse({});
    REQUIRE(d);
    CHECK(d->rotation.max_age_days == 0);
    CHECK_FALSE(d->rotation.compress);

    for (const char* bad : {"-1", "abc", "1.5", "100000"}) {
        INFO("--output-file-max-age " << bad);
        auto e = parse({"--output-file-max-age", bad});
        REQUIRE_FALSE(e);
        CHECK(e.error().kind == pwru::ErrorKind::BadInput);
        CHECK(e.error().what.find("--output-file-max-age") != std::string::npos);
        CHECK(e.error().what.find("pwru --help") != std::string::npos);
        CHECK(e.error().what.find('\n') == std::string::npos);
    }
    auto neg_backups = parse({"--output-file-max-backups", "-1"});
    REQUIRE_FALSE(neg_backups);
    CHECK(neg_backups.error().what.find("--output-file-max-backups") != std::string::npos);
}
