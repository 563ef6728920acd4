// One line of the control protocol, decoded as both ends decode it:
//  - the server (control_server.cc): parse_line, then its argument helpers,
//    and on a parse error the error response it sends back (encoded with
//    dump(), which throws on bytes that are not UTF-8);
//  - the client (client.cc): parse_line, response_from_json and, for an
//    "lvs" body, lv_state_from_json of every item.
// No call may throw: these functions return Result, and an exception that
// escapes one reaches std::terminate in the product. libFuzzer reports an
// uncaught exception as a crash.
#include <cstdint>
#include <string>

#include "cowsnap/control/protocol.h"
#include "fuzz_util.h"

using namespace cowsnap;
using namespace cowsnap::control;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string line(reinterpret_cast<const char*>(data), size);
  auto j = parse_line(line);
  if (!j.ok()) {
    (void)to_json(Response::from_status(j.status())).dump();
    return 0;
  }
  for (const char* key : {"op", "vg", "lv", "origin", "new_lv", "size_bytes", "extents", "chunk_sectors"}) {
    (void)string_arg(*j, key);
    (void)uint_arg(*j, key);
    (void)bool_arg(*j, key, false);
  }
  (void)lv_state_from_json(*j);
  auto response = response_from_json(*j);
  if (!response.ok()) return 0;
  (void)to_json(*response).dump();
  (void)response->status();
  if (auto lvs = response->body.find("lvs"); lvs != response->body.end() && lvs->is_array()) {
    for (const nlohmann::json& item : *lvs) {
      auto s = lv_state_from_json(item);
      if (s.ok()) (void)to_json(*s).dump();
    }
  }
  return 0;
}
