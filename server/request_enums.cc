#include "server/request_enums.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "google/protobuf/descriptor.h"

namespace srn {
namespace {

namespace pb = ::google::protobuf;

absl::Status Unknown(const pb::EnumDescriptor& type, int value, const std::string& path) {
  std::vector<std::string> allowed;
  for (int i = 0; i < type.value_count(); ++i) allowed.push_back(type.value(i)->name());
  return absl::InvalidArgumentError(absl::StrCat(path, ": ", value, " is not a known ",
                                                 type.full_name(), " value; allowed: ",
                                                 absl::StrJoin(allowed, ", ")));
}

absl::Status Check(const pb::Message& message, const std::string& prefix) {
  const pb::Reflection& reflection = *message.GetReflection();
  std::vector<const pb::FieldDescriptor*> fields;
  reflection.ListFields(message, &fields);
  for (const pb::FieldDescriptor* field : fields) {
    const std::string path = absl::StrCat(prefix, field->name());
    if (field->cpp_type() == pb::FieldDescriptor::CPPTYPE_ENUM) {
      const pb::EnumDescriptor& type = *field->enum_type();
      const int n = field->is_repeated() ? reflection.FieldSize(message, field) : 1;
      for (int i = 0; i < n; ++i) {
        const int value = field->is_repeated() ? reflection.GetRepeatedEnumValue(message, field, i)
                                               : reflection.GetEnumValue(message, field);
        if (type.FindValueByNumber(value) == nullptr) {
          return Unknown(type, value,
                         field->is_repeated() ? absl::StrCat(path, "[", i, "]") : path);
        }
      }
    } else if (field->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE && !field->is_map()) {
      if (field->is_repeated()) {
        for (int i = 0; i < reflection.FieldSize(message, field); ++i) {
          absl::Status s = Check(reflection.GetRepeatedMessage(message, field, i),
                                 absl::StrCat(path, "[", i, "]."));
          if (!s.ok()) return s;
        }
      } else {
        absl::Status s = Check(reflection.GetMessage(message, field), path + ".");
        if (!s.ok()) return s;
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status CheckKnownEnums(const google::protobuf::Message& request) {
  return Check(request, "");
}

}  // namespace srn
