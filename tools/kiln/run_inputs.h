// How `kiln run` turns --input / --inputs / --image arguments into engine inputs.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "kiln/kiln.h"
#include "kiln/status.h"

namespace kiln::cli {

/// The input-related options of `kiln run`, as given on the command line.
struct InputOptions {
  std::vector<std::string> npy;     ///< NAME=FILE.npy, repeatable
  std::string npz;                  ///< FILE.npz: members named after engine inputs
  std::vector<std::string> images;  ///< NAME=IMAGE, repeatable
  std::string image_size;           ///< "HxW"; empty = the engine input's H and W, else the image's
  std::string mean;                 ///< "r,g,b" or one value for all channels
  std::string std;                  ///< "r,g,b" or one value for all channels
  std::string scale;                ///< "1/255" or a decimal
  bool bgr = false;
  /// Leave inputs that were not given out of the result instead of failing (`kiln bench`
  /// generates them).
  bool allow_missing = false;
};

/// One loaded input and where it came from (for the report).
struct LoadedInput {
  HostTensor tensor;
  std::string source;
};

/// Loads every input given in `o` and checks the set against the engine: names must be
/// engine inputs (npz members that are not are skipped with a note on stderr), none given
/// twice, none missing (unless o.allow_missing). Images follow io::load_image's
/// preprocessing into the engine input's layout [1, C, H, W] and dtype.
/// Errors: NotFound (unknown name), InvalidArgument (bad syntax, duplicates, image input
/// that is not NCHW), MissingInput (lists the missing inputs with their shapes), and the
/// I/O and format errors of the files.
Result<std::map<std::string, LoadedInput>> gather_inputs(const Engine& engine,
                                                         const InputOptions& o);

}  // namespace kiln::cli
