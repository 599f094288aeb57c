#ifndef SRN_SERVER_WEB_ASSETS_H_
#define SRN_SERVER_WEB_ASSETS_H_

#include <string_view>
#include <vector>

namespace srn {

// One file of web/ (the signature pad page), compiled into the server so that the binary serves
// its page wherever it is installed.
struct WebAsset {
  std::string_view path;  // "/index.html", "/app.js", ...
  std::string_view data;
};

// Every file of web/, generated at build time (server/embed_web_assets.cmake).
const std::vector<WebAsset>& WebAssets();

}  // namespace srn

#endif  // SRN_SERVER_WEB_ASSETS_H_
