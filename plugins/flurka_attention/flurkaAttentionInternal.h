/*
 * Helpers that the plugin's source files share (flurkaAttentionPlugin.cpp lists them). Not part of the plugin's
 * interface: the libraries' hidden visibility keeps them out of their exports.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef FLURKA_ATTENTION_INTERNAL_H
#define FLURKA_ATTENTION_INTERNAL_H

#include "flurkaAttentionPlugin.h"

#include <string>

namespace flurka
{
namespace plugin
{

// flurkaAttentionFields.cpp: value formatting for messages.
char const* dataTypeName(nvinfer1::DataType type) noexcept;
std::string dimsToString(nvinfer1::Dims const& dims); // "[2, ?, 64]": ? where the extent is known at run time only
std::string floatToString(double value);

// flurkaAttentionBuild.cpp: the message for an empty key sequence (Nk = 0), which the kernels do not take.
std::string emptyKeysMessage(nvinfer1::Dims const& key);

} // namespace plugin
} // namespace flurka

#endif // FLURKA_ATTENTION_INTERNAL_H
