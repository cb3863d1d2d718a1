// Status / Expected and the propagation macros.
#include "common/check.h"
#include "common/status.h"

#include <gtest/gtest.h>

namespace ponder {
namespace {

Expected<int> parse_positive(int v) {
  if (v <= 0) return error(StatusCode::kInvalidArgument, "value %d is not positive", v);
  return v;
}

Expected<int> doubled(int v) {
  PONDER_ASSIGN_OR_RETURN(int x, parse_positive(v));
  return 2 * x;
}

Status check_both(int a, int b) {
  PONDER_RETURN_IF_ERROR(doubled(a) ? Status() : doubled(a).error());
  if (!doubled(b)) return doubled(b).error().with_context("second");
  return {};
}

TEST(Status, PropagatesErrorsWithMessages) {
  EXPECT_EQ(*doubled(3), 6);
  auto bad = doubled(-1);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.error().to_string(), "kInvalidArgument: value -1 is not positive");
  EXPECT_TRUE(check_both(1, 2).ok());
  EXPECT_EQ(check_both(1, 0).message(), "second: value 0 is not positive");
  EXPECT_EQ(check_both(0, 1).code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace ponder
