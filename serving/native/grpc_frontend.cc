// A gRPC transport in C++ for `pin2vec serve`: grpc++ receives each call, and a Python thread answers it.
//
// grpc.aio spends about 400 us of CPU per request before the servicer runs, which on 2 cores caps Python
// gRPC near the QPS the related-items target asks for. Here grpc++'s callback API does the HTTP/2 work on
// its own threads without the GIL; calls wait in a queue until Python takes them (a batch at a time, the
// GIL released while it waits), answers them with its usual servicers and hands back the serialized
// response. The transport knows no protobuf types: it moves bytes, so every method and error keeps the
// Python servicers' behaviour.
//
// Python API (module serving._grpc_frontend):
//   Frontend(address, max_receive_bytes, max_send_bytes, reuse_port)  binds and starts; .port
//   take(max_calls, timeout_s) -> [(handle, method, request, time_remaining_s | None, peer, received_s)]
//       or None once shut down; received_s is on time.perf_counter()'s clock
//   reply(handle, code, message, response | None)   answers a taken call, exactly once
//   shutdown(grace_s, abandon_after_s=5.0)   refuses new calls, lets taken ones finish for grace_s, then
//       cancels the rest; answers CANCELLED what Python has not answered abandon_after_s later

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

namespace {

class Frontend;

constexpr double kAbandonAfterS = 5.0;  // shutdown's default wait for answers Python still owes, after grace

double SteadySeconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// One RPC. Lives until grpc++ calls OnDone, which follows Finish; every path below calls Finish once.
class Call final : public grpc::ServerGenericBidiReactor {
 public:
  Call(Frontend* frontend, grpc::GenericCallbackServerContext* context)
      : frontend_(frontend), context_(context) {
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override;
  void OnDone() override { delete this; }

  void Answer(const grpc::Status& status, grpc::ByteBuffer* response) {
    if (response != nullptr && status.ok()) {
      response_.Swap(response);
      StartWriteAndFinish(&response_, grpc::WriteOptions(), status);
    } else {
      Finish(status);
    }
  }

  grpc::GenericCallbackServerContext* context() const { return context_; }
  grpc::ByteBuffer& request() { return request_; }
  double received_s() const { return received_s_; }

 private:
  Frontend* frontend_;
  grpc::GenericCallbackServerContext* context_;
  grpc::ByteBuffer request_;
  grpc::ByteBuffer response_;
  double received_s_ = 0;
};

struct Taken {
  uint64_t handle;
  Call* call;
  double time_remaining_s;  // negative: no deadline
};

class Frontend final : public grpc::CallbackGenericService {
 public:
  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext* context) override {
    return new Call(this, context);
  }

  // Starts serving; returns the bound port, or 0 when the address could not be bound.
  int Start(const std::string& address, int max_receive_bytes, int max_send_bytes, bool reuse_port) {
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort(address, grpc::InsecureServerCredentials(), &port);
    builder.SetMaxReceiveMessageSize(max_receive_bytes);
    builder.SetMaxSendMessageSize(max_send_bytes);
    builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, reuse_port ? 1 : 0);
    builder.RegisterCallbackGenericService(this);
    server_ = builder.BuildAndStart();
    if (server_ == nullptr || port == 0) {
      server_.reset();
      return 0;
    }
    return port;
  }

  void Enqueue(Call* call) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!closed_) {
        queue_.push_back(call);
        ready_.notify_one();
        return;
      }
    }
    call->Answer(grpc::Status(grpc::StatusCode::UNAVAILABLE, "the server is shutting down"), nullptr);
  }

  // Waits up to timeout_s for calls and takes at most max_calls. Calls already past their deadline are
  // answered DEADLINE_EXCEEDED here. `finished` is set once the server is shut down and nothing is left.
  std::vector<Taken> Take(size_t max_calls, double timeout_s, bool* finished) {
    std::vector<Taken> taken;
    std::vector<Call*> expired;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      ready_.wait_for(lock, std::chrono::duration<double>(timeout_s),
                      [this] { return !queue_.empty() || done_; });
      auto now = std::chrono::system_clock::now();
      while (!queue_.empty() && taken.size() < max_calls) {
        Call* call = queue_.front();
        queue_.pop_front();
        auto deadline = call->context()->deadline();
        double remaining = -1;
        if (deadline < now + std::chrono::hours(24 * 365)) {
          remaining = std::chrono::duration<double>(deadline - now).count();
          if (remaining <= 0) {
            expired.push_back(call);
            continue;
          }
        }
        uint64_t handle = next_handle_++;
        answering_[handle] = call;
        taken.push_back({handle, call, remaining});
      }
      *finished = done_ && queue_.empty() && taken.empty() && expired.empty();
    }
    for (Call* call : expired) {
      call->Answer(grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "deadline exceeded before the call was answered"),
                   nullptr);
    }
    return taken;
  }

  // The taken call with this handle, removed from the taken set; nullptr when unknown or answered.
  Call* Claim(uint64_t handle) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto found = answering_.find(handle);
    if (found == answering_.end()) return nullptr;
    Call* call = found->second;
    answering_.erase(found);
    return call;
  }

  // Stops accepting calls; calls taken by Python have grace_s to be answered, then they are cancelled
  // (their answers are still accepted). Calls still queued at the deadline are answered UNAVAILABLE; calls
  // Python has not answered abandon_after_s later are answered CANCELLED, so shutdown never waits forever.
  void Shutdown(double grace_s, double abandon_after_s) {
    if (server_ == nullptr) return;
    auto after = [](double seconds) {
      return std::chrono::system_clock::now() + std::chrono::duration_cast<std::chrono::system_clock::duration>(
                                                    std::chrono::duration<double>(seconds));
    };
    auto deadline = after(grace_s);
    auto abandon_at = after(grace_s + abandon_after_s);
    std::thread flusher([this, deadline, abandon_at] {
      std::unique_lock<std::mutex> lock(mutex_);
      ready_.wait_until(lock, deadline, [this] { return done_; });
      closed_ = true;
      std::deque<Call*> waiting;
      waiting.swap(queue_);
      lock.unlock();
      for (Call* call : waiting) {
        call->Answer(grpc::Status(grpc::StatusCode::UNAVAILABLE, "the server is shutting down"), nullptr);
      }
      lock.lock();
      ready_.wait_until(lock, abandon_at, [this] { return done_; });
      std::vector<Call*> abandoned;
      for (const auto& entry : answering_) abandoned.push_back(entry.second);
      answering_.clear();
      lock.unlock();
      for (Call* call : abandoned) {
        call->Answer(grpc::Status(grpc::StatusCode::CANCELLED, "the server shut down before answering"), nullptr);
      }
    });
    server_->Shutdown(deadline);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      done_ = true;
      closed_ = true;
    }
    ready_.notify_all();
    flusher.join();
    server_->Wait();
    server_.reset();
  }

 private:
  std::unique_ptr<grpc::Server> server_;
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<Call*> queue_;
  std::unordered_map<uint64_t, Call*> answering_;
  uint64_t next_handle_ = 1;
  bool closed_ = false;
  bool done_ = false;
};

void Call::OnReadDone(bool ok) {
  if (!ok) {
    Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "the call ended before its request message"));
    return;
  }
  received_s_ = SteadySeconds();
  frontend_->Enqueue(this);
}

// ---- Python binding ----

struct FrontendObject {
  PyObject_HEAD Frontend* frontend;
  int port;
};

PyObject* BytesOf(grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  if (!buffer.Dump(&slices).ok()) {
    PyErr_SetString(PyExc_RuntimeError, "could not read the request message");
    return nullptr;
  }
  PyObject* bytes = PyBytes_FromStringAndSize(nullptr, static_cast<Py_ssize_t>(buffer.Length()));
  if (bytes == nullptr) return nullptr;
  char* out = PyBytes_AS_STRING(bytes);
  for (const grpc::Slice& slice : slices) {
    std::memcpy(out, slice.begin(), slice.size());
    out += slice.size();
  }
  return bytes;
}

int FrontendInit(FrontendObject* self, PyObject* args, PyObject* kwargs) {
  static const char* keywords[] = {"address", "max_receive_bytes", "max_send_bytes", "reuse_port", nullptr};
  const char* address = nullptr;
  int max_receive = 0, max_send = 0, reuse_port = 0;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "siip", const_cast<char**>(keywords), &address, &max_receive,
                                   &max_send, &reuse_port)) {
    return -1;
  }
  if (self->frontend != nullptr) {
    PyErr_SetString(PyExc_RuntimeError, "Frontend is already started");
    return -1;
  }
  auto frontend = std::make_unique<Frontend>();
  int port = 0;
  std::string bind = address;
  Py_BEGIN_ALLOW_THREADS
  port = frontend->Start(bind, max_receive, max_send, reuse_port != 0);
  Py_END_ALLOW_THREADS
  if (port == 0) {
    PyErr_Format(PyExc_OSError, "could not bind the gRPC server to %s", address);
    return -1;
  }
  self->frontend = frontend.release();
  self->port = port;
  return 0;
}

void FrontendDealloc(FrontendObject* self) {
  if (self->frontend != nullptr) {
    Py_BEGIN_ALLOW_THREADS
    self->frontend->Shutdown(0, kAbandonAfterS);
    Py_END_ALLOW_THREADS
    delete self->frontend;
    self->frontend = nullptr;
  }
  Py_TYPE(self)->tp_free(reinterpret_cast<PyObject*>(self));
}

bool CheckStarted(FrontendObject* self) {
  if (self->frontend == nullptr) {
    PyErr_SetString(PyExc_RuntimeError, "Frontend is not started");
    return false;
  }
  return true;
}

PyObject* FrontendTake(FrontendObject* self, PyObject* args) {
  Py_ssize_t max_calls = 0;
  double timeout_s = 0;
  if (!PyArg_ParseTuple(args, "nd", &max_calls, &timeout_s) || !CheckStarted(self)) return nullptr;
  if (max_calls < 1) {
    PyErr_SetString(PyExc_ValueError, "max_calls must be at least 1");
    return nullptr;
  }
  std::vector<Taken> taken;
  bool finished = false;
  Frontend* frontend = self->frontend;
  Py_BEGIN_ALLOW_THREADS
  taken = frontend->Take(static_cast<size_t>(max_calls), timeout_s, &finished);
  Py_END_ALLOW_THREADS
  if (finished) Py_RETURN_NONE;
  // Answers the calls from `first` on, which Python will never see, so no call is left open.
  auto answer_unread = [&](size_t first) {
    for (size_t j = first; j < taken.size(); ++j) {
      if (Call* lost = frontend->Claim(taken[j].handle)) {
        lost->Answer(grpc::Status(grpc::StatusCode::INTERNAL, "the server could not read the request"), nullptr);
      }
    }
  };
  PyObject* calls = PyList_New(static_cast<Py_ssize_t>(taken.size()));
  if (calls == nullptr) {
    answer_unread(0);
    return nullptr;
  }
  for (size_t i = 0; i < taken.size(); ++i) {
    Call* call = taken[i].call;
    PyObject* request = BytesOf(call->request());
    PyObject* remaining =
        taken[i].time_remaining_s < 0 ? Py_NewRef(Py_None) : PyFloat_FromDouble(taken[i].time_remaining_s);
    const std::string method = call->context()->method();
    const std::string peer = call->context()->peer();
    PyObject* entry = (request == nullptr || remaining == nullptr)
                          ? nullptr
                          : Py_BuildValue("(Ks#OOs#d)", static_cast<unsigned long long>(taken[i].handle), method.data(),
                                          static_cast<Py_ssize_t>(method.size()), request, remaining, peer.data(),
                                          static_cast<Py_ssize_t>(peer.size()), call->received_s());
    Py_XDECREF(request);
    Py_XDECREF(remaining);
    if (entry == nullptr) {
      answer_unread(i);
      Py_DECREF(calls);
      return nullptr;
    }
    PyList_SET_ITEM(calls, static_cast<Py_ssize_t>(i), entry);
  }
  return calls;
}

PyObject* FrontendReply(FrontendObject* self, PyObject* args) {
  unsigned long long handle = 0;
  int code = 0;
  const char* message = nullptr;
  Py_ssize_t message_size = 0;
  PyObject* response = nullptr;
  if (!PyArg_ParseTuple(args, "Kis#O", &handle, &code, &message, &message_size, &response) ||
      !CheckStarted(self)) {
    return nullptr;
  }
  if (code < 0 || code > 16) {
    PyErr_Format(PyExc_ValueError, "code must be a gRPC status code (0-16); got %d", code);
    return nullptr;
  }
  if (response != Py_None && !PyBytes_Check(response)) {
    PyErr_SetString(PyExc_TypeError, "response must be bytes or None");
    return nullptr;
  }
  Call* call = self->frontend->Claim(handle);
  if (call == nullptr) {
    PyErr_Format(PyExc_KeyError, "call %llu is unknown or already answered", handle);
    return nullptr;
  }
  grpc::Status status(static_cast<grpc::StatusCode>(code), std::string(message, message_size));
  if (response == Py_None) {
    Py_BEGIN_ALLOW_THREADS
    call->Answer(status, nullptr);
    Py_END_ALLOW_THREADS
  } else {
    grpc::Slice slice(PyBytes_AS_STRING(response), static_cast<size_t>(PyBytes_GET_SIZE(response)));
    grpc::ByteBuffer buffer(&slice, 1);
    Py_BEGIN_ALLOW_THREADS
    call->Answer(status, &buffer);
    Py_END_ALLOW_THREADS
  }
  Py_RETURN_NONE;
}

PyObject* FrontendShutdown(FrontendObject* self, PyObject* args) {
  double grace_s = 0, abandon_after_s = kAbandonAfterS;
  if (!PyArg_ParseTuple(args, "d|d", &grace_s, &abandon_after_s) || !CheckStarted(self)) return nullptr;
  Frontend* frontend = self->frontend;
  Py_BEGIN_ALLOW_THREADS
  frontend->Shutdown(grace_s, abandon_after_s);
  Py_END_ALLOW_THREADS
  Py_RETURN_NONE;
}

PyObject* FrontendPort(FrontendObject* self, void*) { return PyLong_FromLong(self->port); }

PyMethodDef kFrontendMethods[] = {
    {"take", reinterpret_cast<PyCFunction>(FrontendTake), METH_VARARGS,
     "take(max_calls, timeout_s): the calls waiting, or None once shut down"},
    {"reply", reinterpret_cast<PyCFunction>(FrontendReply), METH_VARARGS,
     "reply(handle, code, message, response): answers a taken call"},
    {"shutdown", reinterpret_cast<PyCFunction>(FrontendShutdown), METH_VARARGS,
     "shutdown(grace_s, abandon_after_s=5.0): stops the server"},
    {nullptr, nullptr, 0, nullptr}};

PyGetSetDef kFrontendGetSet[] = {
    {"port", reinterpret_cast<getter>(FrontendPort), nullptr, "the bound port", nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr}};

PyTypeObject kFrontendType = {PyVarObject_HEAD_INIT(nullptr, 0)};

PyModuleDef kModule = {PyModuleDef_HEAD_INIT, "_grpc_frontend",
                       "grpc++ transport for pin2vec serve (see grpc_frontend.cc)", -1, nullptr};

}  // namespace

PyMODINIT_FUNC PyInit__grpc_frontend() {
  kFrontendType.tp_name = "serving._grpc_frontend.Frontend";
  kFrontendType.tp_basicsize = sizeof(FrontendObject);
  kFrontendType.tp_flags = Py_TPFLAGS_DEFAULT;
  kFrontendType.tp_doc = "A started grpc++ server whose calls Python takes and answers";
  kFrontendType.tp_new = PyType_GenericNew;
  kFrontendType.tp_init = reinterpret_cast<initproc>(FrontendInit);
  kFrontendType.tp_dealloc = reinterpret_cast<destructor>(FrontendDealloc);
  kFrontendType.tp_methods = kFrontendMethods;
  kFrontendType.tp_getset = kFrontendGetSet;
  if (PyType_Ready(&kFrontendType) < 0) return nullptr;
  PyObject* module = PyModule_Create(&kModule);
  if (module == nullptr) return nullptr;
  Py_INCREF(&kFrontendType);
  if (PyModule_AddObject(module, "Frontend", reinterpret_cast<PyObject*>(&kFrontendType)) < 0) {
    Py_DECREF(&kFrontendType);
    Py_DECREF(module);
    return nullptr;
  }
  return module;
}
