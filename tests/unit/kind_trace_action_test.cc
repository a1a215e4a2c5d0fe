// The kind-trace GitHub Action (.github/actions/kind-trace/action.yml), its
// example workflow and its manual (docs/kind-ci.md), checked against each other: every input
// is documented in docs/kind-ci.md and used by a step, every script option a step
// passes exists in e2e/kind-trace.sh, the example only passes declared inputs
// and collects with `if: always()`, and the manual's example block is the
// workflow file byte for byte. Plus the script's promise that `collect`
// never fails a job, even when called wrongly. (The script's real run is
// tests/cri/kind_trace_test.cc.)
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include <yaml-cpp/yaml.h>

#include "support/child_process.h"
#include "support/test_files.h"
#include "support/text_lines.h"

using namespace pwru::test;
using Catch::Matchers::Contains;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

const fs::path kSource = PWRU_SOURCE_DIR;
const fs::path kAction = kSource / ".github/actions/kind-trace/action.yml";
const fs::path kExample = kSource / ".github/workflows/kind-trace-example.yml";
const fs::path kScript = kSource / "e2e/kind-trace.sh";
const std::string kMarker = "<!-- kind-trace-example: .github/workflows/kind-trace-example.yml -->";

std::string slurp(const fs::path& p) {
    std::ifstream in(p);
    REQUIRE(in);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// The action's manual page (docs/kind-ci.md), whole.
std::string readme_section() {
    const std::string doc = slurp(kSource / "docs" / "kind-ci.md");
    REQUIRE(doc.find("# Tracing another project's kind CI") != std::string::npos);
    return doc;
}

// Whether `text` mentions `inputs.NAME` (not as the prefix of a longer name).
bool mentions_input(const std::string& text, const std::string& name) {
    std::regex re("inputs\\." + std::regex_replace(name, std::regex("-"), "\\-") + "(?![A-Za-z0-9_-])");
    return std::regex_search(text, re);
}

std::string dump(const YAML::Node& n) { return YAML::Dump(n); }

}  // namespace

TEST_CASE("kind-trace action: every input documented in docs/kind-ci.md and used by a step", "[unit][kind-trace]") {
    const YAML::Node action = YAML::LoadFile(kAction.string());
    REQUIRE(action["runs"]["using"].as<std::string>() == "composite");
    const YAML::Node inputs = action["inputs"];
    REQUIRE(inputs.IsMap());
    const YAML::Node steps = action["runs"]["steps"];
    REQUIRE(steps.IsSequence());
    std::string all_steps;
    for (const auto& s : steps) all_steps += dump(s) + "\n";

    const std::string section = readme_section();
    std::set<std::string> declared;
    for (const auto& kv : inputs) {
        const std::string name = kv.first.as<std::string>();
        declared.insert(name);
        INFO("input " << name);
        CHECK_FALSE(kv.second["description"].as<std::string>("").empty());
        CHECK(mentions_input(all_steps, name));
        // A row of the manual's input table: | `name` | default | what |
        const auto rows = lines_with(section, "| `" + name + "` |");
        REQUIRE(rows.size() == 1);
        // Its default, as documented.
        const std::string def = kv.second["default"].as<std::string>("");
        if (kv.second["required"].as<bool>(false))
            CHECK_THAT(rows.front(), Contains("(required)"));
        else
            CHECK_THAT(rows.front(), Contains(def.empty() ? "`\"\"`" : "`" + def + "`"));
    }
    // ... and the manual documents no input the action does not have.
    std::regex row(R"(^\| `([a-z-]+)` \|)");
    std::istringstream in(section);
    size_t rows = 0;
    for (std::string l; std::getline(in, l);) {
        std::smatch m;
        if (!std::regex_search(l, m, row)) continue;
        ++rows;
        INFO(l);
        CHECK(declared.count(m[1]) == 1);
    }
    CHECK(rows == declared.size());
}

TEST_CASE("kind-trace action: start, collect and upload steps run the script as documented", "[unit][kind-trace]") {
    const YAML::Node action = YAML::LoadFile(kAction.string());
    const std::string script = slurp(kScript);
    std::map<std::string, YAML::Node> by_mode;
    YAML::Node upload;
    for (const YAML::Node& s : action["runs"]["steps"]) {
        const std::string cond = s["if"].as<std::string>("");
        INFO("step " << s["name"].as<std::string>("?"));
        if (s["uses"]) {
            CHECK_THAT(s["uses"].as<std::string>(), Contains("actions/upload-artifact@"));
            upload = s;
            continue;
        }
        const std::string run = s["run"].as<std::string>("");
        // Every variable the run script reads comes from the step's env (inputs
        // are never pasted into the script text, so a filter with quotes is safe).
        std::regex var(R"(\$\{?(KT_[A-Z_]+))");
        for (auto it = std::sregex_iterator(run.begin(), run.end(), var); it != std::sregex_iterator(); ++it)
            CHECK(s["env"][(*it)[1].str()].IsDefined());
        CHECK_THAT(run, !Contains("${{"));
        // Every option passed is one the script takes.
        std::regex opt(R"((--[a-z-]+) ")");
        for (auto it = std::sregex_iterator(run.begin(), run.end(), opt); it != std::sregex_iterator(); ++it) {
            INFO("option " << (*it)[1].str());
            CHECK_THAT(script, Contains("    " + (*it)[1].str() + ")"));
        }
        if (cond == "inputs.mode == 'start'") by_mode["start"] = s;
        if (cond == "inputs.mode == 'collect'") by_mode["collect"] = s;
    }
    REQUIRE(by_mode.count("start"));
    REQUIRE(by_mode.count("collect"));
    CHECK_THAT(by_mode["start"]["run"].as<std::string>(), Contains("\"$KT_SCRIPT\" start "));
    CHECK_THAT(by_mode["collect"]["run"].as<std::string>(), Contains("\"$KT_SCRIPT\" collect "));
    CHECK_THAT(by_mode["start"]["env"]["KT_SCRIPT"].as<std::string>(), Contains("github.action_path"));
    // The upload runs in collect mode, is never what fails the job, and takes the output dir.
    REQUIRE(upload.IsDefined());
    CHECK(upload["if"].as<std::string>() == "inputs.mode == 'collect'");
    CHECK(upload["continue-on-error"].as<bool>(false));
    CHECK(upload["with"]["path"].as<std::string>() == "${{ inputs.output-dir }}");
    CHECK(upload["with"]["name"].as<std::string>() == "${{ inputs.artifact-name }}");
}

TEST_CASE(
    "kind-trace example: the manual's block is the workflow file; it starts before the tests and always "
    "collects",
    "[unit][kind-trace]") {
    const std::string file = slurp(kExample);
    const std::string section = readme_section();
    auto at = section.find(kMarker);
    REQUIRE(at != std::string::npos);
    const std::string open = "```yaml\n";
    auto body = section.find(open, at);
    REQUIRE(body == section.find('\n', at) + 1);  // the block follows the marker line
    body += open.size();
    auto close = section.find("\n```\n", body);
    REQUIRE(close != std::string::npos);
    CHECK(section.substr(body, close + 1 - body) == file);

    const YAML::Node action = YAML::LoadFile(kAction.string());
    const YAML::Node wf = YAML::Load(file);
    REQUIRE(wf["jobs"].IsMap());
    int start_at = -1, collect_at = -1, i = 0;
    for (const auto& job : wf["jobs"]) {
        for (const auto& s : job.second["steps"]) {
            ++i;
            if (s["uses"].as<std::string>("") != "./.github/actions/kind-trace") continue;
            for (const auto& kv : s["with"]) {
                INFO("with: " << kv.first.as<std::string>());
                CHECK(action["inputs"][kv.first.as<std::string>()].IsDefined());
            }
            const std::string mode = s["with"]["mode"].as<std::string>("");
            if (mode == "start") start_at = i;
            if (mode == "collect") {
                collect_at = i;
                CHECK(s["if"].as<std::string>("") == "always()");
            }
        }
    }
    CHECK(start_at > 0);
    CHECK(collect_at > start_at);
}

TEST_CASE("kind-trace.sh: collect never fails the job; start refuses bad options", "[unit][kind-trace]") {
    TempDir dir{"pwru-kind-trace-unit"};
    auto run = [&](std::vector<std::string> args) {
        args.insert(args.begin(), {"env", "-u", "GITHUB_ACTIONS", "-u", "GITHUB_STEP_SUMMARY", kScript.string()});
        auto p = std::make_unique<ChildProcess>(args);
        REQUIRE(p->wait(30s));
        return p;
    };
    const std::string out = (dir.path / "out").string();
    {
        auto p = run({"collect", "--output-dir", out});  // start never ran
        CHECK(p->exit_status() == 0);
        CHECK(lines_with(p->stderr_text(), "kind-trace: warning: no trace to collect in").size() == 1);
    }
    {
        auto p = run({"collect", "--output-dir", out, "--no-such-option", "x"});
        CHECK(p->exit_status() == 0);
        CHECK(lines_with(p->stderr_text(), "kind-trace: warning: unknown option '--no-such-option'").size() == 1);
    }
    {
        auto p = run({"start", "--output-dir", out, "--ready-timeout", "soon"});
        CHECK(p->exit_status() == 2);
        CHECK(lines_with(p->stderr_text(), "--ready-timeout must be a number of seconds, not 'soon'").size() == 1);
    }
    {
        auto p = run({"stop"});
        CHECK(p->exit_status() == 2);
        CHECK(lines_with(p->stderr_text(), "unknown mode 'stop': use start or collect").size() == 1);
    }
}
