// Softmax and group-limited sigmoid top-k routing.
#include "worker/model/moe_router.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

namespace ponder::worker {
namespace {

// The k indices with the largest values (descending; ties: the lower index first).
void top_k(const float* values, int64_t n, int64_t k, int32_t* out, std::vector<int32_t>& order) {
  order.resize(n);
  std::iota(order.begin(), order.end(), 0);
  std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](int32_t a, int32_t b) {
    return values[a] > values[b] || (values[a] == values[b] && a < b);
  });
  std::copy(order.begin(), order.begin() + k, out);
}

}  // namespace

void route_tokens(const MoeConfig& c, const float* logits, int64_t n, std::span<const float> bias,
                  int32_t* experts, float* weights) {
  const int64_t e = c.n_experts, k = c.top_k, per = e / c.n_group;
  std::vector<float> scores(e), choice(e), group_scores(c.n_group);
  std::vector<int32_t> order, groups(c.topk_group);
  for (int64_t t = 0; t < n; ++t) {
    const float* l = logits + t * e;
    int32_t* ex = experts + t * k;
    float* w = weights + t * k;
    if (c.scoring == MoeScoring::kSoftmax) {
      const float max = *std::max_element(l, l + e);
      float sum = 0.0f;
      for (int64_t i = 0; i < e; ++i) sum += scores[i] = std::exp(l[i] - max);
      for (int64_t i = 0; i < e; ++i) scores[i] /= sum;
    } else {
      for (int64_t i = 0; i < e; ++i) scores[i] = 1.0f / (1.0f + std::exp(-l[i]));
    }
    for (int64_t i = 0; i < e; ++i) choice[i] = scores[i] + (bias.empty() ? 0.0f : bias[i]);
    if (c.topk_group < c.n_group) {
      for (int64_t g = 0; g < c.n_group; ++g) {
        const float* s = choice.data() + g * per;
        int32_t best[2];
        top_k(s, per, c.group_by_max ? 1 : 2, best, order);
        group_scores[g] = c.group_by_max ? s[best[0]] : s[best[0]] + s[best[1]];
      }
      top_k(group_scores.data(), c.n_group, c.topk_group, groups.data(), order);
      std::vector<bool> kept(c.n_group, false);
      for (int32_t g : groups) kept[g] = true;
      for (int64_t i = 0; i < e; ++i)
        if (!kept[i / per]) choice[i] = -std::numeric_limits<float>::infinity();
    }
    top_k(choice.data(), e, k, ex, order);
    float sum = 0.0f;
    for (int64_t i = 0; i < k; ++i) sum += w[i] = scores[ex[i]];
    if (c.norm_topk_prob) {
      // DeepSeek guards the division (+1e-20); softmax weights are never all zero.
      const float denom = c.scoring == MoeScoring::kSigmoid ? sum + 1e-20f : sum;
      for (int64_t i = 0; i < k; ++i) w[i] /= denom;
    }
    for (int64_t i = 0; i < k; ++i) w[i] *= static_cast<float>(c.routed_scaling_factor);
  }
}

}  // namespace ponder::worker
