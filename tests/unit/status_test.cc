#include <gtest/gtest.h>

#include "kiln/status.h"

namespace kiln {

TEST(Status, FormatsLikeTheCatalogue) {
  Status st(ErrorCode::kOnnxUnsupportedOp, "operator Foo is not supported", "replace it",
            ErrorLocation{"n1", "Foo", 13, "attribute 'x'"});
  EXPECT_EQ(st.to_string(),
            "error[KLN-E1004]: operator Foo is not supported at node 'n1' (Foo, opset 13): attribute 'x'. hint: replace it");
  EXPECT_FALSE(st.is_ok());
  EXPECT_TRUE(Status::ok().is_ok());
}

TEST(Status, ParsesIds) {
  EXPECT_EQ(parse_error_id("KLN-E1004"), ErrorCode::kOnnxUnsupportedOp);
  EXPECT_EQ(parse_error_id("1004"), ErrorCode::kOnnxUnsupportedOp);
  EXPECT_FALSE(parse_error_id("KLN-E9999").has_value());
  EXPECT_FALSE(parse_error_id("bogus").has_value());
  for (int c : {1, 1001, 4003})
    EXPECT_NE(error_info(static_cast<ErrorCode>(c)), nullptr) << c;
}

}  // namespace kiln
