#include "slurm/endpoint_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

namespace ponder::slurm {

std::string endpoint_path(const std::string& job_dir) { return job_dir + "/endpoint.json"; }

Status write_endpoint(const std::string& job_dir, const EndpointRecord& r) {
  nlohmann::json j = {{"state", r.state},
                      {"reason", r.reason},
                      {"url", r.url},
                      {"host", r.host},
                      {"address", r.address},
                      {"port", r.port},
                      {"api_key_file", r.api_key_file},
                      {"job_id", r.job_id},
                      {"restart_count", r.restart_count},
                      {"replicas", r.replicas},
                      {"healthy_replicas", r.healthy_replicas},
                      {"coordinator_pid", r.coordinator_pid},
                      {"updated_unix", r.updated_unix ? r.updated_unix : static_cast<int64_t>(std::time(nullptr))}};
  const std::string text = j.dump(2) + "\n";
  const std::string final_path = endpoint_path(job_dir);
  const std::string tmp = final_path + ".tmp." + std::to_string(getpid());
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return error(StatusCode::kUnavailable, "cannot write %s: %s", tmp.c_str(), std::strerror(errno));
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      close(fd);
      unlink(tmp.c_str());
      return error(StatusCode::kUnavailable, "cannot write %s: %s", tmp.c_str(), std::strerror(errno));
    }
    done += static_cast<size_t>(n);
  }
  fsync(fd);
  close(fd);
  if (rename(tmp.c_str(), final_path.c_str()) != 0) {
    unlink(tmp.c_str());
    return error(StatusCode::kUnavailable, "cannot rename %s to %s: %s", tmp.c_str(), final_path.c_str(),
                 std::strerror(errno));
  }
  return {};
}

Expected<EndpointRecord> read_endpoint(const std::string& job_dir) {
  const std::string path = endpoint_path(job_dir);
  std::ifstream in(path);
  if (!in) return error(StatusCode::kNotFound, "%s does not exist (yet)", path.c_str());
  std::stringstream text;
  text << in.rdbuf();
  nlohmann::json j = nlohmann::json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("state") || !j["state"].is_string())
    return error(StatusCode::kInvalidArgument, "%s is not an endpoint record", path.c_str());
  EndpointRecord r;
  auto str = [&](const char* k, std::string& out) {
    if (j.contains(k) && j[k].is_string()) out = j[k].get<std::string>();
  };
  auto num = [&](const char* k, auto& out) {
    if (j.contains(k) && j[k].is_number_integer()) out = j[k].get<std::decay_t<decltype(out)>>();
  };
  str("state", r.state);
  str("reason", r.reason);
  str("url", r.url);
  str("host", r.host);
  str("address", r.address);
  num("port", r.port);
  str("api_key_file", r.api_key_file);
  str("job_id", r.job_id);
  num("restart_count", r.restart_count);
  num("replicas", r.replicas);
  num("healthy_replicas", r.healthy_replicas);
  num("coordinator_pid", r.coordinator_pid);
  num("updated_unix", r.updated_unix);
  return r;
}

}  // namespace ponder::slurm
