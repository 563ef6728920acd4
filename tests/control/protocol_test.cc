// Decoding control-protocol lines: every input gives a Result, never an
// exception or undefined behaviour (inputs found by fuzz/fuzz_control).
#include "cowsnap/control/protocol.h"

#include <catch2/catch.hpp>

#include <cerrno>
#include <string>

using namespace cowsnap;
using namespace cowsnap::control;
using nlohmann::json;

TEST_CASE("control: a response and its LV states round-trip") {
  LvState snap;
  snap.vg = "vgsrv";
  snap.lv = "sb64m";
  snap.active = true;
  snap.size_bytes = 64 << 20;
  snap.is_snapshot = true;
  snap.origin = "b64m";
  snap.chunk_sectors = 8;
  snap.usage = Usage{65536, 2048, 16};
  Response r;
  r.notices = {"a notice"};
  r.body["lvs"] = json::array({to_json(snap)});
  auto line = parse_line(to_json(r).dump());
  REQUIRE(line.ok());
  auto back = response_from_json(*line);
  REQUIRE(back.ok());
  CHECK(back->notices == r.notices);
  auto state = lv_state_from_json(back->body.at("lvs").at(0));
  REQUIRE(state.ok());
  CHECK(state->lv == "sb64m");
  CHECK(state->chunk_sectors == 8);
  CHECK(state->usage->allocated_sectors == 2048);
}

TEST_CASE("control: the error response to a line that is not UTF-8 can be sent") {
  // nlohmann's parse error quotes the bytes it last read; dump() throws on
  // bytes that are not UTF-8, which the server's session thread did not
  // catch (std::terminate).
  for (const std::string line : {"\xff", "{\"op\":\xc3(}", "[1, \xe2\x82]", "tru\x80"}) {
    auto j = parse_line(line);
    REQUIRE_FALSE(j.ok());
    CHECK(j.status().errnum() == EPROTO);
    std::string sent;
    REQUIRE_NOTHROW(sent = to_json(Response::from_status(j.status())).dump());
    CHECK(sent.find("not valid JSON") != std::string::npos);
  }
}

TEST_CASE("control: deeply nested JSON is refused, not recursed into") {
  // Parsing is iterative but copying and dumping a json value recurse once
  // per level: a line of a few MiB nested a million deep overflowed the
  // stack in response_from_json (client) and in the server's request log.
  constexpr size_t kDepth = 1'000'000;
  const std::string line = "{\"ok\":true,\"x\":" + std::string(kDepth, '[') + std::string(kDepth, ']') + "}";
  auto j = parse_line(line);
  REQUIRE_FALSE(j.ok());
  CHECK(j.status().errnum() == EPROTO);
  CHECK(j.status().message().find("nested") != std::string::npos);
  // Brackets inside strings are not nesting.
  auto s = parse_line("{\"op\":\"" + std::string(1000, '[') + "\"}");
  REQUIRE(s.ok());
  // What the protocol itself nests (an lvs response: 4 levels) is fine.
  CHECK(parse_line(R"({"lvs":[{"usage":{"total":1}}]})").ok());
}

TEST_CASE("control: integers that are floats or out of range are EPROTO, not UB") {
  // get<int>() of a JSON float is a static_cast: undefined behaviour when
  // the value does not fit (UBSan: float-cast-overflow).
  for (const char* line : {R"({"ok":false,"errno":1e300})", R"({"ok":false,"errno":-1e19})",
                           R"({"ok":false,"errno":4294967296})"}) {
    auto j = parse_line(line);
    REQUIRE(j.ok());
    auto r = response_from_json(*j);
    INFO(line);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().errnum() == EPROTO);
  }
  for (const char* line :
       {R"({"vg":"v","lv":"l","open":1e300})", R"({"vg":"v","lv":"l","size_bytes":-1})",
        R"({"vg":"v","lv":"l","snapshot":true,"chunk_sectors":4294967296})",
        R"({"vg":"v","lv":"l","snapshot":true,"usage":{"total":1e30,"allocated":0,"metadata":0}})",
        R"({"vg":"v","lv":"l","preferred_block_bytes":2.5})"}) {
    auto j = parse_line(line);
    REQUIRE(j.ok());
    INFO(line);
    auto s = lv_state_from_json(*j);
    REQUIRE_FALSE(s.ok());
    CHECK(s.status().errnum() == EPROTO);
  }
}
