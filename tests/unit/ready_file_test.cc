// kubectl-pwru --ready-file: when it is due (every stream attached or failed,
// at least one attached), what it lists, and that it is written whole.
#include <catch2/catch.hpp>

#include <filesystem>

#include "kubectl-plugin/ready_file.h"
#include "support/child_process.h"
#include "support/test_files.h"

using namespace pwru::plugin;
using pwru::test::read_file_text;
using pwru::test::TempDir;

TEST_CASE("the ready file waits for every stream, skips the failed, lists each node once", "[plugin][ready]") {
    TempDir dir("pwru-ready");
    const std::string path = (dir.path / "ready").string();
    ReadyFile r(path, 4);
    r.on_attached(1, "node-b");
    CHECK_FALSE(r.due());
    r.on_failed(2);  // refused: reported elsewhere, not waited for
    r.on_attached(0, "node-a");
    CHECK_FALSE(r.due());  // stream 3 (a second pod on node-b) still attaching
    r.on_attached(3, "node-b");
    REQUIRE(r.due());
    REQUIRE(r.write());
    CHECK(read_file_text(path) == "node-a\nnode-b\n");
    CHECK_FALSE(std::filesystem::exists(path + ".tmp"));
    CHECK_FALSE(r.due());  // once
}

TEST_CASE("no ready file when nothing attached, or a stream fails before it attaches", "[plugin][ready]") {
    ReadyFile none("/nonexistent/ready", 2);
    none.on_failed(0);
    none.on_failed(1);
    CHECK_FALSE(none.due());

    ReadyFile r("/x/ready", 2);
    r.on_failed(0);
    r.on_attached(0, "node-a");  // a start after the failure does not count
    r.on_attached(1, "node-b");
    REQUIRE(r.due());
    CHECK(r.content() == "node-b\n");

    ReadyFile off("", 1);  // no --ready-file
    off.on_attached(0, "node-a");
    CHECK_FALSE(off.due());
}

TEST_CASE("a ready file that cannot be written is one line naming it", "[plugin][ready]") {
    ReadyFile r("/nonexistent-dir/ready", 1);
    r.on_attached(0, "node-a");
    REQUIRE(r.due());
    auto w = r.write();
    REQUIRE_FALSE(w);
    CHECK_THAT(w.error().message(), Catch::Matchers::Contains("/nonexistent-dir/ready"));
}
