// The digits model's OIP v2 gRPC server process: flags, listening, health, SIGTERM.
//
//   digits_server --host 127.0.0.1 --port 0 --weights ../../digits/weights.json
//
// Prints exactly one line on stdout once serving, "digits model listening on HOST:PORT", as
// examples/python/digits_server.py does, so the same helpers can start either. On SIGTERM or
// SIGINT it drains: ServerReady and health go NOT_SERVING, the server stops accepting, in-flight
// calls get --grace seconds, then it exits 0.
#include <pthread.h>
#include <signal.h>

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <stdexcept>
#include <string>

#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include "digits_model.h"
#include "digits_service.h"

namespace {

constexpr const char* kServerName = "digits-cpp";
constexpr const char* kServerVersion = "0.1.0";
constexpr const char* kService = "inference.GRPCInferenceService";

struct Flags {
  std::string host = "127.0.0.1";
  int port = 8001;
  std::string weights = DIGITS_DEFAULT_WEIGHTS;  // set by CMake: examples/digits/weights.json
  double grace = 5.0;
};

const char* const kUsage =
    "usage: digits_server [--host HOST] [--port PORT] [--weights PATH] [--grace SECONDS]\n"
    "OIP v2 gRPC server for the digits model.\n"
    "  --host     address to listen on (default 127.0.0.1)\n"
    "  --port     port; 0 picks a free one (default 8001)\n"
    "  --weights  weights.json (default " DIGITS_DEFAULT_WEIGHTS ")\n"
    "  --grace    seconds in-flight calls get on shutdown (default 5)\n";

[[noreturn]] void Usage(const std::string& error) {
  std::cerr << kUsage << "digits_server: error: " << error << "\n";
  std::exit(2);
}

double ParseNumber(const std::string& flag, const std::string& text) {
  try {
    std::size_t used = 0;
    const double value = std::stod(text, &used);
    if (used == text.size()) return value;
  } catch (const std::logic_error&) {
  }
  Usage("argument " + flag + ": invalid value '" + text + "'");
}

Flags ParseFlags(int argc, char** argv) {
  Flags flags;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      std::cout << kUsage;
      std::exit(0);
    }
    std::string value;
    if (const auto eq = arg.find('='); arg.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      Usage("argument " + arg + ": expected one argument");
    }
    if (arg == "--host") {
      flags.host = value;
    } else if (arg == "--port") {
      const double port = ParseNumber(arg, value);
      if (port < 0 || port > 65535 || port != static_cast<int>(port)) {
        Usage("argument --port: " + value + " is not a port number (0..65535)");
      }
      flags.port = static_cast<int>(port);
    } else if (arg == "--weights") {
      flags.weights = value;
    } else if (arg == "--grace") {
      flags.grace = ParseNumber(arg, value);
      if (!(flags.grace >= 0)) Usage("--grace is " + value + ", must be >= 0");
    } else {
      Usage("unrecognized argument: " + arg);
    }
  }
  return flags;
}

std::string Address(const std::string& host, int port) {
  const bool ipv6 = host.find(':') != std::string::npos;
  return (ipv6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

}  // namespace

int main(int argc, char** argv) {
  const Flags flags = ParseFlags(argc, argv);
  std::unique_ptr<digits::Model> model;
  try {
    model = std::make_unique<digits::Model>(digits::Model::Load(flags.weights));
  } catch (const std::runtime_error& error) {
    std::cerr << error.what() << "\n";
    return 1;
  }

  // Block the stop signals before gRPC starts its threads, so they all inherit the mask and the
  // signals wait for sigwait below instead of killing the process mid-call.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  digits::DigitsService service(*model, {kServerName, kServerVersion, "cpp"});
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  // A port already taken must fail here, not be silently shared.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  const std::string address = Address(flags.host, flags.port);
  int bound = 0;
  builder.AddListeningPort(address, grpc::InsecureServerCredentials(), &bound);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || bound == 0) {
    std::cerr << "digits model: cannot listen on " << address << "\n";
    return 1;
  }
  grpc::HealthCheckServiceInterface* health = server->GetHealthCheckService();
  health->SetServingStatus("", true);
  health->SetServingStatus(kService, true);

  std::cout << "digits model listening on " << Address(flags.host, bound) << std::endl;

  int received = 0;
  sigwait(&stop_signals, &received);

  service.StartDraining();
  health->Shutdown();  // every service NOT_SERVING, Watch callers told, no later change
  const auto grace = std::chrono::duration_cast<std::chrono::nanoseconds>(
      std::chrono::duration<double>(flags.grace));
  server->Shutdown(std::chrono::system_clock::now() + grace);
  server->Wait();
  return 0;
}
