// deploy/k8s: every kustomization renders with the real kubectl, and the rendered objects agree
// with the real srn-server (its flags, health service names, ports) and with each other.

#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "gtest/gtest.h"
#include "tests/client/e2e_harness.h"
#include "tests/deploy/deploy_testing.h"

namespace srn::testing {
namespace {

using google::protobuf::Struct;
using google::protobuf::Value;

// Secrets the production overlays expect to exist in the cluster (created outside git, as
// docs/DEPLOY.md describes), so they are referenced but never rendered.
const std::set<std::string> kExternalSecrets = {"srn-tokens", "srn-tls", "srn-postgres"};
constexpr char kContainer[] = "srn-server";

std::string K8sDir() { return SourcePath("deploy/k8s"); }

// base, every overlay and monitoring: each directory with a kustomization.yaml.
std::vector<std::string> Kustomizations() {
  std::vector<std::string> dirs;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(K8sDir(), ec);
       it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (it->path().filename() == "kustomization.yaml") {
      dirs.push_back(std::filesystem::relative(it->path().parent_path(), K8sDir()).string());
    }
  }
  std::sort(dirs.begin(), dirs.end());
  return dirs;
}

// The kustomizations that deploy the server (all but monitoring).
std::vector<std::string> ServerKustomizations() {
  std::vector<std::string> dirs;
  for (const std::string& dir : Kustomizations()) {
    if (dir != "monitoring") dirs.push_back(dir);
  }
  return dirs;
}

std::string TestName(const ::testing::TestParamInfo<std::string>& info) {
  return absl::StrReplaceAll(info.param, {{"/", "_"}, {"-", "_"}});
}

const std::optional<std::string>& Kubectl() {
  static const auto* kubectl = new std::optional<std::string>(FindTool("kubectl", "KUBECTL"));
  return *kubectl;
}

#define SRN_REQUIRE_KUBECTL()                                                                 \
  if (!Kubectl()) {                                                                           \
    GTEST_SKIP() << "kubectl not found on PATH (deploy/install-deps.sh deploy installs it; " \
                    "$KUBECTL names another)";                                                \
  }

const BinaryFlags& ServerFlags() {
  static const BinaryFlags* flags = [] {
    absl::StatusOr<BinaryFlags> f = FlagsOf(SRN_SERVER_BINARY);
    EXPECT_TRUE(f.ok()) << f.status();
    return new BinaryFlags(f.ok() ? *f : BinaryFlags());
  }();
  return *flags;
}

const BinaryFlags& SrnctlFlags() {
  static const BinaryFlags* flags = [] {
    absl::StatusOr<BinaryFlags> f = FlagsOf(SRNCTL_BINARY);
    EXPECT_TRUE(f.ok()) << f.status();
    return new BinaryFlags(f.ok() ? *f : BinaryFlags());
  }();
  return *flags;
}

// A Kubernetes quantity ("500m", "2", "256Mi", "1Gi") in base units; nullopt when unparsable.
std::optional<double> Quantity(const Value* value) {
  if (value == nullptr) return std::nullopt;
  if (value->has_number_value()) return value->number_value();
  if (!value->has_string_value()) return std::nullopt;
  std::string text = value->string_value();
  static const std::vector<std::pair<std::string, double>> kSuffixes = {
      {"Ki", 1024.0}, {"Mi", 1048576.0}, {"Gi", 1073741824.0}, {"Ti", 1099511627776.0},
      {"m", 1e-3},    {"k", 1e3},        {"M", 1e6},           {"G", 1e9}};
  double scale = 1;
  for (const auto& [suffix, factor] : kSuffixes) {
    if (absl::EndsWith(text, suffix)) {
      text.resize(text.size() - suffix.size());
      scale = factor;
      break;
    }
  }
  double number = 0;
  if (!absl::SimpleAtod(text, &number)) return std::nullopt;
  return number * scale;
}

// "host:port" -> port.
int PortOf(const std::string& address) {
  int port = -1;
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos || !absl::SimpleAtoi(address.substr(colon + 1), &port)) return -1;
  return port;
}

// One rendered kustomization, with the server's workload, its container and its settings.
class Rendered {
 public:
  explicit Rendered(std::vector<Struct> objects) : objects_(std::move(objects)) {}

  const std::vector<Struct>& objects() const { return objects_; }
  std::vector<const Struct*> OfKind(const std::string& kind) const {
    std::vector<const Struct*> found;
    for (const Struct& o : objects_) {
      if (StringAt(o, {"kind"}) == kind) found.push_back(&o);
    }
    return found;
  }
  const Struct* Named(const std::string& kind, const std::string& name) const {
    for (const Struct* o : OfKind(kind)) {
      if (StringAt(*o, {"metadata", "name"}) == name) return o;
    }
    return nullptr;
  }

 private:
  std::vector<Struct> objects_;
};

class K8sOverlayTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    SRN_REQUIRE_KUBECTL();
    // Rendered once per kustomization and process (each render runs kubectl twice).
    static auto* cache = new std::map<std::string, absl::StatusOr<std::vector<Struct>>>();
    auto it = cache->find(GetParam());
    if (it == cache->end()) {
      it = cache->emplace(GetParam(), RenderKustomization(*Kubectl(), K8sDir() + "/" + GetParam()))
               .first;
    }
    ASSERT_TRUE(it->second.ok()) << it->second.status();
    rendered_ = std::make_unique<Rendered>(*it->second);
    // The server's workload: the one StatefulSet (a SQLite store per pod) or Deployment
    // (replicas over PostgreSQL) whose pods run the server (a dev database may run beside it).
    for (const char* kind : {"StatefulSet", "Deployment"}) {
      for (const Struct* workload : rendered_->OfKind(kind)) {
        const Struct& pod = Find(*workload, {"spec", "template"})->struct_value();
        for (const Value* c : ListAt(pod, {"spec", "containers"})) {
          if (StringAt(c->struct_value(), {"name"}) != kContainer) continue;
          ASSERT_EQ(sts_, nullptr) << "two workloads run " << kContainer;
          sts_ = workload;
          pod_ = &pod;
          container_ = &c->struct_value();
        }
      }
    }
    ASSERT_NE(container_, nullptr) << "no workload runs a container named " << kContainer;
    // The effective flags: the flag file first, then the args (absl: the last one wins).
    for (const Value* arg : ListAt(*container_, {"args"})) args_.push_back(arg->string_value());
    for (const std::string& arg : args_) {
      auto flag = ParseFlag(arg);
      if (flag && flag->first == "flagfile") {
        flagfile_path_ = flag->second;
        absl::StatusOr<std::string> text = FlagFileContent(flag->second);
        ASSERT_TRUE(text.ok()) << text.status();
        flagfile_lines_ = FlagFileLines(*text);
      }
    }
    for (const std::string& line : flagfile_lines_) AddSetting(line);
    for (const std::string& arg : args_) AddSetting(arg);
  }

  void AddSetting(const std::string& arg) {
    if (auto flag = ParseFlag(arg)) settings_[flag->first] = flag->second;
  }
  // The value a flag takes in the pod: set explicitly, else the server's default.
  std::string Setting(const std::string& flag) const {
    auto it = settings_.find(flag);
    if (it != settings_.end()) return it->second;
    auto d = ServerFlags().defaults.find(flag);
    return d == ServerFlags().defaults.end() ? "" : d->second;
  }
  double NumberSetting(const std::string& flag) const {
    double value = NAN;
    EXPECT_TRUE(absl::SimpleAtod(Setting(flag), &value)) << flag << "=" << Setting(flag);
    return value;
  }

  // The volume mounted at the directory holding `path` (longest mount path that prefixes it).
  const Struct* VolumeFor(const std::string& path, std::string* mount_path = nullptr) const {
    std::string best_name, best_path;
    for (const Value* m : ListAt(*container_, {"volumeMounts"})) {
      const std::string mp = StringAt(m->struct_value(), {"mountPath"});
      if (absl::StartsWith(path, mp + "/") && mp.size() > best_path.size()) {
        best_path = mp;
        best_name = StringAt(m->struct_value(), {"name"});
      }
    }
    if (mount_path != nullptr) *mount_path = best_path;
    for (const Value* v : ListAt(*pod_, {"spec", "volumes"})) {
      if (StringAt(v->struct_value(), {"name"}) == best_name) return &v->struct_value();
    }
    for (const Value* t : ListAt(*sts_, {"spec", "volumeClaimTemplates"})) {
      if (StringAt(t->struct_value(), {"metadata", "name"}) == best_name) return &t->struct_value();
    }
    return nullptr;
  }

  // The content of a file the container sees through a ConfigMap or Secret volume.
  absl::StatusOr<std::string> FlagFileContent(const std::string& path) const {
    std::string mount;
    const Struct* volume = VolumeFor(path, &mount);
    if (volume == nullptr) return absl::NotFoundError(path + " is on no volume");
    const std::string key = path.substr(mount.size() + 1);
    const std::string config_map = StringAt(*volume, {"configMap", "name"});
    const Struct* object = rendered_->Named("ConfigMap", config_map);
    if (object == nullptr) return absl::NotFoundError("ConfigMap " + config_map + " not rendered");
    const Value* data = Find(*object, {"data", key});
    if (data == nullptr) return absl::NotFoundError("ConfigMap " + config_map + " has no " + key);
    return data->string_value();
  }

  int ContainerPort(const std::string& name) const {
    for (const Value* p : ListAt(*container_, {"ports"})) {
      if (StringAt(p->struct_value(), {"name"}) == name) {
        return static_cast<int>(NumberAt(p->struct_value(), {"containerPort"}).value_or(-1));
      }
    }
    return -1;
  }

  std::unique_ptr<Rendered> rendered_;
  const Struct* sts_ = nullptr;
  const Struct* pod_ = nullptr;
  const Struct* container_ = nullptr;
  std::vector<std::string> args_;
  std::string flagfile_path_;
  std::vector<std::string> flagfile_lines_;
  std::map<std::string, std::string> settings_;
};

TEST(K8sKustomizeTest, EveryKustomizationRenders) {
  SRN_REQUIRE_KUBECTL();
  const std::vector<std::string> dirs = Kustomizations();
  // base, monitoring and at least a dev and a prod overlay.
  EXPECT_GE(dirs.size(), 4u) << absl::StrJoin(dirs, ", ");
  EXPECT_TRUE(std::count(dirs.begin(), dirs.end(), "overlays/dev") == 1);
  EXPECT_TRUE(std::count(dirs.begin(), dirs.end(), "overlays/prod") == 1);
  for (const std::string& dir : dirs) {
    absl::StatusOr<std::vector<Struct>> objects =
        RenderKustomization(*Kubectl(), K8sDir() + "/" + dir);
    ASSERT_TRUE(objects.ok()) << objects.status();
    EXPECT_FALSE(objects->empty()) << dir;
  }
}

TEST_P(K8sOverlayTest, ArgsAndFlagFileUseOnlyFlagsTheServerHas) {
  std::vector<std::string> unknown;
  std::vector<std::string> all = flagfile_lines_;
  all.insert(all.end(), args_.begin(), args_.end());
  for (const std::string& arg : all) {
    auto flag = ParseFlag(arg);
    if (!flag) {
      unknown.push_back(arg + " (not a --flag)");
    } else if (ServerFlags().flags.count(flag->first) == 0) {
      unknown.push_back(flag->first);
    }
  }
  EXPECT_TRUE(unknown.empty()) << "flags srn-server --help/--helpfull does not list: "
                               << absl::StrJoin(unknown, ", ");
  EXPECT_FALSE(flagfile_path_.empty()) << "settings come from the ConfigMap's flag file";
  EXPECT_FALSE(flagfile_lines_.empty());
  // Tokens never on the command line.
  for (const std::string& arg : args_) EXPECT_FALSE(absl::StrContains(arg, "token=")) << arg;
}

TEST_P(K8sOverlayTest, EnvIsReadByTheServerOrExpandedInArgs) {
  const std::string joined = absl::StrJoin(args_, " ");
  for (const Value* e : ListAt(*container_, {"env"})) {
    const std::string name = StringAt(e->struct_value(), {"name"});
    const bool read_by_server = ServerFlags().env_vars.count(name) > 0;
    const bool expanded = absl::StrContains(joined, "$(" + name + ")");
    EXPECT_TRUE(read_by_server || expanded)
        << name << " is neither read by srn-server (" << absl::StrJoin(ServerFlags().env_vars, ", ")
        << ") nor used as $(" << name << ") in args";
  }
  // And every $(VAR) in args is defined.
  static const std::regex kVar(R"(\$\(([A-Za-z_][A-Za-z0-9_]*)\))");
  for (std::sregex_iterator it(joined.begin(), joined.end(), kVar), end; it != end; ++it) {
    bool defined = false;
    for (const Value* e : ListAt(*container_, {"env"})) {
      defined |= StringAt(e->struct_value(), {"name"}) == (*it)[1];
    }
    EXPECT_TRUE(defined) << "args use $(" << (*it)[1] << ") but env does not define it";
  }
}

TEST_P(K8sOverlayTest, PortsMatchTheListenFlags) {
  const int grpc = ContainerPort("grpc");
  const int metrics = ContainerPort("metrics");
  EXPECT_EQ(PortOf(Setting("listen")), grpc) << "--listen=" << Setting("listen");
  EXPECT_EQ(PortOf(Setting("metrics_listen")), metrics)
      << "--metrics_listen=" << Setting("metrics_listen");
  // Reachable from other pods: not a loopback address.
  EXPECT_TRUE(absl::StartsWith(Setting("listen"), "0.0.0.0:")) << Setting("listen");
  EXPECT_TRUE(absl::StartsWith(Setting("metrics_listen"), "0.0.0.0:")) << Setting("metrics_listen");
  // Scrape annotations on the pod name the metrics port.
  EXPECT_EQ(StringAt(*pod_, {"metadata", "annotations", "prometheus.io/port"}),
            absl::StrCat(metrics));
  EXPECT_EQ(StringAt(*pod_, {"metadata", "annotations", "prometheus.io/scrape"}), "true");
}

// A Service port that reaches container port `port` (by name or number) of the server pods.
bool ServiceReaches(const Struct& service, const Struct& pod, const std::string& port_name,
                    int port) {
  const Value* selector = Find(service, {"spec", "selector"});
  if (selector == nullptr || selector->struct_value().fields().empty()) return false;
  for (const auto& [key, value] : selector->struct_value().fields()) {
    if (StringAt(pod, {"metadata", "labels", key}) != value.string_value()) return false;
  }
  for (const Value* p : ListAt(service, {"spec", "ports"})) {
    const Value* target = Find(p->struct_value(), {"targetPort"});
    if (target == nullptr) continue;
    if ((target->has_string_value() && target->string_value() == port_name) ||
        (target->has_number_value() && static_cast<int>(target->number_value()) == port)) {
      return true;
    }
  }
  return false;
}

TEST_P(K8sOverlayTest, ServicesForGrpcAndMetrics) {
  int grpc_services = 0, metrics_services = 0;
  for (const Struct* service : rendered_->OfKind("Service")) {
    if (ServiceReaches(*service, *pod_, "grpc", ContainerPort("grpc"))) ++grpc_services;
    if (ServiceReaches(*service, *pod_, "metrics", ContainerPort("metrics"))) {
      ++metrics_services;
      EXPECT_EQ(StringAt(*service, {"metadata", "annotations", "prometheus.io/scrape"}), "true");
      EXPECT_EQ(StringAt(*service, {"metadata", "annotations", "prometheus.io/port"}),
                absl::StrCat(ContainerPort("metrics")));
    }
  }
  EXPECT_GE(grpc_services, 1);
  EXPECT_GE(metrics_services, 1);
  if (StringAt(*sts_, {"kind"}) == "StatefulSet") {
    // The StatefulSet's governing service exists and is headless.
    const Struct* governing =
        rendered_->Named("Service", StringAt(*sts_, {"spec", "serviceName"}));
    ASSERT_NE(governing, nullptr) << "spec.serviceName "
                                  << StringAt(*sts_, {"spec", "serviceName"});
    EXPECT_EQ(StringAt(*governing, {"spec", "clusterIP"}), "None");
  } else {
    // Replicas: a headless service lists them all, for clients balancing with round_robin.
    int headless = 0;
    for (const Struct* service : rendered_->OfKind("Service")) {
      headless += StringAt(*service, {"spec", "clusterIP"}) == "None" &&
                  ServiceReaches(*service, *pod_, "grpc", ContainerPort("grpc"));
    }
    EXPECT_EQ(headless, 1);
  }
}

TEST_P(K8sOverlayTest, ProbesUseTheHealthService) {
  const std::set<std::string> kServices = {"", "srn.v1.SimilarityService"};
  for (const char* probe : {"startupProbe", "readinessProbe", "livenessProbe"}) {
    SCOPED_TRACE(probe);
    const Value* p = Find(*container_, {probe});
    ASSERT_NE(p, nullptr) << "missing";
    if (const Value* grpc = Find(p->struct_value(), {"grpc"})) {
      // Native gRPC probe: the gRPC port, a service name the server registers.
      EXPECT_EQ(NumberAt(grpc->struct_value(), {"port"}).value_or(-1), ContainerPort("grpc"));
      EXPECT_EQ(kServices.count(StringAt(grpc->struct_value(), {"service"})), 1u)
          << StringAt(grpc->struct_value(), {"service"});
      // The kubelet's gRPC probe cannot speak TLS.
      EXPECT_EQ(Setting("tls_cert"), "") << "native gRPC probes on a TLS port always fail";
    } else {
      // Exec probe: srnctl health with flags srnctl has.
      const std::vector<const Value*> command = ListAt(p->struct_value(), {"exec", "command"});
      ASSERT_FALSE(command.empty()) << "neither a grpc nor an exec probe";
      EXPECT_EQ(std::filesystem::path(command[0]->string_value()).filename(), "srnctl");
      // Where the image puts it.
      absl::StatusOr<std::string> dockerfile = ReadFileText(SourcePath("Dockerfile"));
      ASSERT_TRUE(dockerfile.ok());
      EXPECT_TRUE(std::regex_search(*dockerfile, std::regex("\nCOPY --from=\\S+ \\S+/srnctl " +
                                                            command[0]->string_value() + "\n")))
          << command[0]->string_value() << " is not where the Dockerfile copies srnctl";
      EXPECT_EQ(command.back()->string_value(), "health");
      for (size_t i = 1; i + 1 < command.size(); ++i) {
        auto flag = ParseFlag(command[i]->string_value());
        ASSERT_TRUE(flag) << command[i]->string_value();
        EXPECT_EQ(SrnctlFlags().flags.count(flag->first), 1u) << "srnctl has no --" << flag->first;
        if (flag->first == "server") { EXPECT_EQ(PortOf(flag->second), ContainerPort("grpc")); }
        if (flag->first == "service") {
          EXPECT_EQ(kServices.count(flag->second), 1u) << flag->second;
        }
        if (flag->first == "tls_ca") {
          EXPECT_NE(VolumeFor(flag->second), nullptr) << flag->second;
        }
      }
    }
  }
  // Readiness is on the similarity service; liveness on the whole server.
  const Value* ready = Find(*container_, {"readinessProbe", "grpc", "service"});
  if (ready != nullptr) { EXPECT_EQ(ready->string_value(), "srn.v1.SimilarityService"); }
}

TEST_P(K8sOverlayTest, TerminationDrainsBeforeTheKill) {
  const double drain = NumberSetting("drain_seconds");
  const double grace = NumberSetting("grace_seconds");
  const double termination = NumberAt(*pod_, {"spec", "terminationGracePeriodSeconds"})
                                 .value_or(30);  // Kubernetes' default
  EXPECT_GT(drain, 0) << "health must go NOT_SERVING before the server stops accepting calls";
  EXPECT_GT(termination, drain + grace)
      << "terminationGracePeriodSeconds must exceed --drain_seconds + --grace_seconds";
  // Readiness notices NOT_SERVING well within the drain.
  const Value* readiness = Find(*container_, {"readinessProbe"});
  ASSERT_NE(readiness, nullptr);
  const double period = NumberAt(readiness->struct_value(), {"periodSeconds"}).value_or(10);
  const double failures = NumberAt(readiness->struct_value(), {"failureThreshold"}).value_or(3);
  EXPECT_LT(period * failures, drain) << "readiness would still pass when the drain ends";
}

// A SQLite store is on each pod's own persistent volume (one writer: a StatefulSet of one);
// replicas share a PostgreSQL store whose URI and password come from a Secret.
TEST_P(K8sOverlayTest, StoreIsOnAPersistentVolumeWithOneWriterOrInPostgres) {
  const std::string store = Setting("store");
  if (StringAt(*sts_, {"kind"}) == "Deployment") {
    ASSERT_EQ(store, "$(SRN_STORE_URI)") << "replicas need the shared PostgreSQL store";
    for (const char* var : {"SRN_STORE_URI", "PGPASSWORD"}) {
      bool from_secret = false;
      for (const Value* e : ListAt(*container_, {"env"})) {
        from_secret |= StringAt(e->struct_value(), {"name"}) == var &&
                       !StringAt(e->struct_value(), {"valueFrom", "secretKeyRef", "name"}).empty();
      }
      EXPECT_TRUE(from_secret) << var << " must come from a Secret";
    }
    EXPECT_EQ(Setting("model_dir"), "") << "the model registry is in the database";
    EXPECT_GE(NumberAt(*sts_, {"spec", "replicas"}).value_or(1), 2);
    return;
  }
  EXPECT_EQ(NumberAt(*sts_, {"spec", "replicas"}).value_or(1), 1) << "one writer per store";
  ASSERT_TRUE(absl::StartsWith(store, "/")) << "--store=" << store;
  const Struct* volume = VolumeFor(store);
  ASSERT_NE(volume, nullptr) << store << " is on no volume";
  // A volumeClaimTemplate (each pod its own claim), mounted by one node at a time.
  ASSERT_NE(Find(*volume, {"spec", "accessModes"}), nullptr) << store << " is not on a claim";
  const std::vector<const Value*> modes = ListAt(*volume, {"spec", "accessModes"});
  ASSERT_EQ(modes.size(), 1u);
  EXPECT_EQ(modes[0]->string_value(), "ReadWriteOnce");
  for (const char* flag : {"model_dir", "data_dir"}) {
    if (!Setting(flag).empty()) { EXPECT_EQ(VolumeFor(Setting(flag)), volume) << flag; }
  }
}

TEST_P(K8sOverlayTest, SecretsAndConfigMapsResolve) {
  // Every ConfigMap/Secret volume names a rendered object or a documented external Secret.
  absl::StatusOr<std::string> deploy_doc = ReadFileText(SourcePath("docs/DEPLOY.md"));
  ASSERT_TRUE(deploy_doc.ok()) << deploy_doc.status();
  for (const Value* v : ListAt(*pod_, {"spec", "volumes"})) {
    const Struct& volume = v->struct_value();
    if (const std::string cm = StringAt(volume, {"configMap", "name"}); !cm.empty()) {
      EXPECT_NE(rendered_->Named("ConfigMap", cm), nullptr) << "ConfigMap " << cm;
    }
    if (const std::string secret = StringAt(volume, {"secret", "secretName"}); !secret.empty()) {
      if (rendered_->Named("Secret", secret) == nullptr) {
        EXPECT_EQ(kExternalSecrets.count(secret), 1u) << "Secret " << secret << " is not rendered";
        EXPECT_TRUE(absl::StrContains(*deploy_doc, "create secret generic " + secret))
            << "docs/DEPLOY.md must say how to create Secret " << secret;
      }
    }
  }
  // Every Secret the environment reads is rendered or documented as created outside git.
  for (const Value* e : ListAt(*container_, {"env"})) {
    const std::string secret = StringAt(e->struct_value(), {"valueFrom", "secretKeyRef", "name"});
    if (secret.empty() || rendered_->Named("Secret", secret) != nullptr) continue;
    EXPECT_EQ(kExternalSecrets.count(secret), 1u) << "Secret " << secret << " is not rendered";
    EXPECT_TRUE(absl::StrContains(*deploy_doc, "create secret generic " + secret))
        << "docs/DEPLOY.md must say how to create Secret " << secret;
  }
  // Tokens come from a Secret-backed file; the TLS files (when on) too.
  for (const char* flag : {"tokens_file", "tls_cert", "tls_key", "tls_client_ca"}) {
    const std::string path = Setting(flag);
    if (path.empty()) continue;
    const Struct* volume = VolumeFor(path);
    ASSERT_NE(volume, nullptr) << "--" << flag << "=" << path;
    EXPECT_NE(Find(*volume, {"secret"}), nullptr) << "--" << flag << " must come from a Secret";
  }
  EXPECT_FALSE(Setting("tokens_file").empty()) << "a non-loopback listener needs tokens";
  EXPECT_NE(Setting("allow_unauthenticated_remote"), "true");
}

TEST_P(K8sOverlayTest, ResourcesAreSetAndConsistent) {
  for (const char* resource : {"cpu", "memory"}) {
    auto request = Quantity(Find(*container_, {"resources", "requests", resource}));
    auto limit = Quantity(Find(*container_, {"resources", "limits", resource}));
    ASSERT_TRUE(request && limit) << resource << " request and limit must both be set";
    EXPECT_GT(*request, 0);
    EXPECT_LE(*request, *limit) << resource;
  }
  // The measured idle server is ~20 MiB (docs/DEPLOY.md): a limit below 64 MiB cannot be right.
  EXPECT_GE(*Quantity(Find(*container_, {"resources", "limits", "memory"})), 64.0 * 1048576);
}

TEST_P(K8sOverlayTest, RunsAsTheImagesNonRootUser) {
  EXPECT_TRUE(Find(*pod_, {"spec", "securityContext", "runAsNonRoot"}) != nullptr &&
              Find(*pod_, {"spec", "securityContext", "runAsNonRoot"})->bool_value());
  // The Dockerfile's USER.
  absl::StatusOr<std::string> dockerfile = ReadFileText(SourcePath("Dockerfile"));
  ASSERT_TRUE(dockerfile.ok());
  std::smatch m;
  ASSERT_TRUE(std::regex_search(*dockerfile, m, std::regex(R"(\nUSER (\d+))")));
  EXPECT_EQ(NumberAt(*pod_, {"spec", "securityContext", "runAsUser"}).value_or(-1),
            std::stod(m[1]));
}

TEST_P(K8sOverlayTest, DisruptionBudgetCoversThePods) {
  const std::vector<const Struct*> pdbs = rendered_->OfKind("PodDisruptionBudget");
  ASSERT_EQ(pdbs.size(), 1u);
  const Value* labels = Find(*pdbs[0], {"spec", "selector", "matchLabels"});
  ASSERT_NE(labels, nullptr);
  for (const auto& [key, value] : labels->struct_value().fields()) {
    EXPECT_EQ(StringAt(*pod_, {"metadata", "labels", key}), value.string_value()) << key;
  }
}

INSTANTIATE_TEST_SUITE_P(Kustomizations, K8sOverlayTest,
                         ::testing::ValuesIn(ServerKustomizations()), TestName);

TEST(K8sMonitoringTest, ServiceMonitorSelectsTheMetricsServiceAndNamesTheJobSrn) {
  SRN_REQUIRE_KUBECTL();
  auto monitors = RenderKustomization(*Kubectl(), K8sDir() + "/monitoring");
  auto base = RenderKustomization(*Kubectl(), K8sDir() + "/base");
  ASSERT_TRUE(monitors.ok()) << monitors.status();
  ASSERT_TRUE(base.ok()) << base.status();
  ASSERT_EQ(monitors->size(), 1u);
  const Struct& monitor = (*monitors)[0];
  ASSERT_EQ(StringAt(monitor, {"kind"}), "ServiceMonitor");
  const Value* selector = Find(monitor, {"spec", "selector", "matchLabels"});
  ASSERT_NE(selector, nullptr);
  const std::string port = StringAt(monitor, {"spec", "endpoints", "0", "port"});
  int matches = 0;
  for (const Struct& service : *base) {
    if (StringAt(service, {"kind"}) != "Service") continue;
    bool selected = true;
    for (const auto& [key, value] : selector->struct_value().fields()) {
      selected &= StringAt(service, {"metadata", "labels", key}) == value.string_value();
    }
    if (!selected) continue;
    ++matches;
    bool has_port = false;
    for (const Value* p : ListAt(service, {"spec", "ports"})) {
      has_port |= StringAt(p->struct_value(), {"name"}) == port;
    }
    EXPECT_TRUE(has_port) << "Service " << StringAt(service, {"metadata", "name"})
                          << " has no port " << port;
    // jobLabel names a label whose value is "srn": the rules select job="srn".
    EXPECT_EQ(StringAt(service, {"metadata", "labels", StringAt(monitor, {"spec", "jobLabel"})}),
              "srn");
  }
  EXPECT_EQ(matches, 1) << "the ServiceMonitor must select exactly the metrics Service";
}

// The dev overlay, as rendered, started for real: the server accepts every flag, the flag file
// and the tokens Secret, and serves health for each service name the probes ask about.
TEST(K8sDevOverlayTest, RenderedServerStartsAndServesTheProbedHealthServices) {
  SRN_REQUIRE_KUBECTL();
  auto objects = RenderKustomization(*Kubectl(), K8sDir() + "/overlays/dev");
  ASSERT_TRUE(objects.ok()) << objects.status();
  Rendered rendered(std::move(*objects));
  ASSERT_EQ(rendered.OfKind("StatefulSet").size(), 1u);
  const Struct& pod =
      Find(*rendered.OfKind("StatefulSet")[0], {"spec", "template"})->struct_value();
  const Struct* container = nullptr;
  for (const Value* c : ListAt(pod, {"spec", "containers"})) {
    if (StringAt(c->struct_value(), {"name"}) == kContainer) container = &c->struct_value();
  }
  ASSERT_NE(container, nullptr);

  // Lay out the pod's filesystem under a temporary root: ConfigMap and Secret volumes become
  // files, other volumes empty directories.
  TempDir root;
  std::map<std::string, std::string> mounts;  // mountPath -> volume name
  for (const Value* m : ListAt(*container, {"volumeMounts"})) {
    mounts[StringAt(m->struct_value(), {"mountPath"})] = StringAt(m->struct_value(), {"name"});
  }
  for (const auto& [mount_path, name] : mounts) {
    const std::string dir = root.path() + mount_path;
    std::filesystem::create_directories(dir);
    for (const Value* v : ListAt(pod, {"spec", "volumes"})) {
      if (StringAt(v->struct_value(), {"name"}) != name) continue;
      const std::string cm = StringAt(v->struct_value(), {"configMap", "name"});
      const std::string secret = StringAt(v->struct_value(), {"secret", "secretName"});
      if (!cm.empty()) {
        const Struct* object = rendered.Named("ConfigMap", cm);
        ASSERT_NE(object, nullptr) << cm;
        for (const auto& [key, value] : Find(*object, {"data"})->struct_value().fields()) {
          ASSERT_TRUE(WriteFile(dir + "/" + key, value.string_value()));
        }
      } else if (!secret.empty()) {
        const Struct* object = rendered.Named("Secret", secret);
        ASSERT_NE(object, nullptr) << secret;
        for (const auto& [key, value] : Find(*object, {"data"})->struct_value().fields()) {
          std::string decoded;
          ASSERT_TRUE(absl::Base64Unescape(value.string_value(), &decoded)) << key;
          ASSERT_TRUE(WriteFile(dir + "/" + key, decoded));
          // As the kubelet does: the volume's defaultMode (0644 when unset), which the server
          // checks for a tokens file.
          const Value* mode = Find(v->struct_value(), {"secret", "defaultMode"});
          ASSERT_EQ(::chmod((dir + "/" + key).c_str(),
                            mode != nullptr ? static_cast<mode_t>(mode->number_value()) : 0644),
                    0);
        }
      }
    }
  }
  // The pod's args, with paths under the root, $(VAR)s expanded from env, and free loopback
  // ports instead of 0.0.0.0:50051 / :9464 (the port numbers are checked above).
  std::map<std::string, std::string> env;
  for (const Value* e : ListAt(*container, {"env"})) {
    const std::string name = StringAt(e->struct_value(), {"name"});
    if (Find(e->struct_value(), {"valueFrom", "resourceFieldRef"}) != nullptr) {
      auto q = Quantity(Find(
          *container,
          {"resources", "limits",
           StringAt(e->struct_value(), {"valueFrom", "resourceFieldRef", "resource"}).substr(7)}));
      ASSERT_TRUE(q);
      env[name] = absl::StrCat(static_cast<int>(std::ceil(*q)));
    } else {
      env[name] = StringAt(e->struct_value(), {"value"});
    }
  }
  std::vector<std::string> flags;
  for (const Value* a : ListAt(*container, {"args"})) {
    std::string arg = a->string_value();
    for (const auto& [name, value] : env)
      arg = absl::StrReplaceAll(arg, {{"$(" + name + ")", value}});
    auto flag = ParseFlag(arg);
    ASSERT_TRUE(flag) << arg;
    if (flag->first == "listen" || flag->first == "metrics_listen") continue;
    if (absl::StartsWith(flag->second, "/"))
      arg = absl::StrCat("--", flag->first, "=", root.path(), flag->second);
    flags.push_back(arg);
  }
  auto server = ServerProcess::Start(flags, root.File("server.log"), CleanEnvironment());
  ASSERT_TRUE(server.ok()) << server.status();
  std::set<std::string> services;
  for (const char* probe : {"startupProbe", "readinessProbe", "livenessProbe"}) {
    services.insert(StringAt(*container, {probe, "grpc", "service"}));
  }
  for (const std::string& service : services) {
    EXPECT_TRUE(WaitUntilServing({"--server=" + (*server)->address(), "--service=" + service},
                                 CleanEnvironment()))
        << "health of '" << service << "' is not SERVING\n" << (*server)->Log();
  }
  // An unknown name is not SERVING: the check above is not vacuous.
  EXPECT_NE(RunSrnctl({"--server=" + (*server)->address(), "--service=no.such.Service", "health"})
                .exit_code,
            0);
  // The dev tokens work (the server read the Secret file).
  const std::string token = root.File("admin-token");
  ASSERT_TRUE(WriteFile(token, "dev-admin-token-not-secret"));
  ProcessResult info =
      RunSrnctl({"--server=" + (*server)->address(), "--token_file=" + token, "model-info"});
  EXPECT_EQ(info.exit_code, 0) << info.out << info.err;
  ProcessResult denied = RunSrnctl({"--server=" + (*server)->address(), "model-info"});
  EXPECT_NE(denied.exit_code, 0) << "calls without a token must fail";
}

// The trainer of the replicated deployments: srn-server --role=trainer on the replicas' database,
// with flags the server has, its datasets on a volume, and no Service sending it client traffic.
class K8sTrainerTest : public ::testing::TestWithParam<std::string> {};

TEST_P(K8sTrainerTest, RunsTheSharedStoresJobsWithItsDataAndTakesNoTraffic) {
  SRN_REQUIRE_KUBECTL();
  absl::StatusOr<std::vector<Struct>> objects =
      RenderKustomization(*Kubectl(), K8sDir() + "/" + GetParam());
  ASSERT_TRUE(objects.ok()) << objects.status();
  const Rendered rendered(*std::move(objects));
  const Struct* trainer = rendered.Named("Deployment", "srn-trainer");
  ASSERT_NE(trainer, nullptr);
  const Struct& pod = Find(*trainer, {"spec", "template"})->struct_value();
  const std::vector<const Value*> containers = ListAt(pod, {"spec", "containers"});
  ASSERT_EQ(containers.size(), 1u);
  const Struct& container = containers[0]->struct_value();
  std::map<std::string, std::string> settings;
  for (const Value* arg : ListAt(container, {"args"})) {
    auto flag = ParseFlag(arg->string_value());
    ASSERT_TRUE(flag.has_value()) << arg->string_value();
    EXPECT_EQ(ServerFlags().flags.count(flag->first), 1u) << "srn-server has no --" << flag->first;
    settings[flag->first] = flag->second;
  }
  EXPECT_EQ(settings["role"], "trainer");
  EXPECT_EQ(settings["store"], "$(SRN_STORE_URI)");
  std::set<std::string> env;
  for (const Value* e : ListAt(container, {"env"})) {
    const std::string name = StringAt(e->struct_value(), {"name"});
    env.insert(name);
    if (name == "SRN_STORE_URI" || name == "PGPASSWORD") {
      // (a generated Secret's name carries a hash)
      EXPECT_TRUE(absl::StartsWith(
          StringAt(e->struct_value(), {"valueFrom", "secretKeyRef", "name"}), "srn-postgres"))
          << name;
    }
  }
  for (const char* var : {"SRN_STORE_URI", "PGPASSWORD", "POD_NAME", "SRN_CPU_LIMIT"}) {
    EXPECT_EQ(env.count(var), 1u) << var << " is used in args but not set";
  }
  // --data_dir is a mounted volume.
  ASSERT_FALSE(settings["data_dir"].empty());
  bool mounted = false;
  for (const Value* m : ListAt(container, {"volumeMounts"})) {
    mounted |= StringAt(m->struct_value(), {"mountPath"}) == settings["data_dir"];
  }
  EXPECT_TRUE(mounted) << "--data_dir=" << settings["data_dir"] << " is on no volume";
  // A job on an old pod ends as interrupted when it stops: never two pods at once.
  EXPECT_EQ(StringAt(*trainer, {"spec", "strategy", "type"}), "Recreate");
  double heartbeat = 0, timeout = 0;
  ASSERT_TRUE(absl::SimpleAtod(settings["job_heartbeat_seconds"], &heartbeat));
  ASSERT_TRUE(absl::SimpleAtod(settings["job_heartbeat_timeout_seconds"], &timeout));
  EXPECT_GE(timeout, 3 * heartbeat) << "a trainer must miss several heartbeats to count as gone";
  // No Service selects it.
  const Struct* labels = &Find(pod, {"metadata", "labels"})->struct_value();
  for (const Struct* service : rendered.OfKind("Service")) {
    const Value* selector = Find(*service, {"spec", "selector"});
    if (selector == nullptr) continue;
    bool all_match = true;
    for (const auto& [key, value] : selector->struct_value().fields()) {
      all_match &= StringAt(*labels, {key}) == value.string_value();
    }
    EXPECT_FALSE(all_match) << "Service " << StringAt(*service, {"metadata", "name"})
                            << " sends traffic to the trainer";
  }
}

INSTANTIATE_TEST_SUITE_P(Replicated, K8sTrainerTest,
                         ::testing::Values("replicated", "overlays/replicated-dev"), TestName);

}  // namespace
}  // namespace srn::testing
