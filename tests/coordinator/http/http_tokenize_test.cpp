// POST /tokenize and /detokenize (vLLM's shape) on a real HttpServer in front of the tiny
// reasoner: the ids are the tokenizer's (and, for messages, the prompt a chat completion
// counts), detokenize inverts them, bad input is a 400 naming the field.
#include <gtest/gtest.h>

#include "coordinator/http/http_server.h"
#include "http_test_client.h"
#include "tiny_model_fixture.h"

namespace ponder::coordinator::http {
namespace {

using Json = nlohmann::json;
using testing::HttpReply;

class HttpTokenizeTest : public testing::TinyModelFixture {
 protected:
  void SetUp() override {
    auto s = HttpServer::start({.port = 0}, *model_, *dispatcher_);
    ASSERT_TRUE(s.has_value()) << s.error().to_string();
    server_ = std::move(*s);
  }
  HttpReply post(const std::string& path, const Json& body) {
    return testing::post_json(server_->port(), path, body);
  }
  std::unique_ptr<HttpServer> server_;
};

TEST_F(HttpTokenizeTest, APromptIsTheTokenizersIds) {
  const std::string text = "What is 17+25?";
  const HttpReply r = post("/tokenize", {{"prompt", text}, {"return_token_strs", true}});
  ASSERT_EQ(r.status, 200) << r.body;
  std::vector<int32_t> want = model_->tokenizer.encode(text);
  const auto& bos = model_->tokenizer.bos_token();
  if (model_->tokenizer.add_bos_token() && bos) want.insert(want.begin(), bos->id);
  EXPECT_EQ(r.json()["tokens"].get<std::vector<int32_t>>(), want);
  EXPECT_EQ(r.json()["count"], want.size());
  EXPECT_EQ(r.json()["max_model_len"], 1024);
  ASSERT_EQ(r.json()["token_strs"].size(), want.size());
  EXPECT_EQ(r.json()["token_strs"][want.size() - 1],
            std::string(*model_->tokenizer.token_text(want.back())));

  const HttpReply back = post("/detokenize", {{"tokens", model_->tokenizer.encode(text)}});
  ASSERT_EQ(back.status, 200) << back.body;
  EXPECT_EQ(back.json()["prompt"], text);
}

TEST_F(HttpTokenizeTest, MessagesCountWhatAChatCompletionCounts) {
  const Json messages = Json::array({{{"role", "user"}, {"content", "What is 17+25?"}}});
  const HttpReply t = post("/tokenize", {{"model", "tiny-reasoner"}, {"messages", messages}});
  ASSERT_EQ(t.status, 200) << t.body;
  const HttpReply chat = post("/v1/chat/completions", {{"messages", messages}, {"max_tokens", 1}});
  ASSERT_EQ(chat.status, 200) << chat.body;
  EXPECT_EQ(t.json()["count"], chat.json()["usage"]["prompt_tokens"]);
  // The template's text, token for token.
  const HttpReply text = post("/detokenize", {{"tokens", t.json()["tokens"]}});
  EXPECT_NE(text.json()["prompt"].get<std::string>().find("What is 17+25?"), std::string::npos);
}

TEST_F(HttpTokenizeTest, BadInputNamesTheField) {
  struct Case {
    std::string path;
    Json body;
    int status;
    std::string param_or_code;
  } cases[] = {
      {"/tokenize", Json::object(), 400, "missing_required_parameter"},
      {"/tokenize", {{"prompt", 5}}, 400, "prompt"},
      {"/tokenize", {{"prompt", {"a", "b"}}}, 400, "prompt"},
      {"/tokenize", {{"prompt", "x"}, {"model", "other"}}, 404, "model"},
      {"/detokenize", Json::object(), 400, "tokens"},
      {"/detokenize", {{"tokens", {1, -1}}}, 400, "tokens"},
      {"/detokenize", {{"tokens", {1, 1 << 30}}}, 400, "tokens"},
      {"/detokenize", {{"tokens", {"a"}}}, 400, "tokens"},
  };
  for (const Case& c : cases) {
    const HttpReply r = post(c.path, c.body);
    EXPECT_EQ(r.status, c.status) << c.path << " " << c.body.dump() << " " << r.body;
    const Json body = r.json();
    ASSERT_TRUE(body.contains("error")) << r.body;
    const Json& e = body["error"];
    EXPECT_TRUE(e.value("param", Json()) == c.param_or_code ||
                e.value("code", Json()) == c.param_or_code)
        << r.body;
  }
  EXPECT_EQ(testing::http_request(server_->port(), "GET", "/tokenize").status, 405);
}

}  // namespace
}  // namespace ponder::coordinator::http
