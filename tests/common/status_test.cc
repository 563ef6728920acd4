#include <catch2/catch.hpp>

#include <cerrno>

#include "cowsnap/common/status.h"

using cowsnap::Result;
using cowsnap::Status;

namespace {

Result<int> half(int n) {
  if (n % 2 != 0) return Status::Error(EINVAL, "odd number");
  return n / 2;
}

Result<int> quarter(int n) {
  COWSNAP_ASSIGN_OR_RETURN(int h, half(n));
  return half(h);
}

}  // namespace

TEST_CASE("Status carries an errno and a message with context") {
  Status ok;
  CHECK(ok.ok());
  CHECK(ok.errnum() == 0);
  Status err = Status::Error(EIO, "COW store full").with_context("snapshot vgsrv/sb64m");
  CHECK_FALSE(err.ok());
  CHECK(err.errnum() == EIO);
  CHECK(err.message() == "snapshot vgsrv/sb64m: COW store full");
}

TEST_CASE("Result propagates values and errors") {
  CHECK(quarter(8).value() == 2);
  auto r = quarter(6);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().errnum() == EINVAL);
  CHECK(r.status().message() == "odd number");
}
