"""A tiny random CSM (~0.3 M parameters) built offline: real transformers classes, real file layout.

It goes through the same loading, prompt, generation, streaming-decode and voice-cache code as
sesame/csm-1b; only the sizes differ. The chat template is csm-1b's own. The codec's codebook (64)
is smaller than the audio vocab (67), as in csm-1b (2048 vs 2051): ids 64..66 cannot be decoded and
Jarvis never samples them, so random weights still give decodable audio, and a clip's codes (< 64)
always fit the vocab.
"""
from __future__ import annotations

from pathlib import Path

NUM_CODEBOOKS, VOCAB, CODEC_CODEBOOK = 8, 67, 64

# csm-1b's chat template, as transformers' conversion script writes it.
CHAT_TEMPLATE = '\n{%- for message in messages %}\n    {#-- Validate role is a stringified integer --#}\n    {%- if not message[\'role\'] is string or not message[\'role\'].isdigit() %}\n        {{- raise_exception("The role must be an integer or a stringified integer (e.g. \'0\') designating the speaker id") }}\n    {%- endif %}\n\n    {#-- Validate content is a list --#}\n    {%- set content = message[\'content\'] %}\n    {%- if content is not iterable or content is string %}\n        {{- raise_exception("The content must be a list") }}\n    {%- endif %}\n\n    {#-- Collect content types --#}\n    {%- set content_types = content | map(attribute=\'type\') | list %}\n    {%- set is_last = loop.last %}\n\n    {#-- Last message validation --#}\n    {%- if is_last %}\n        {%- if \'text\' not in content_types %}\n            {{- raise_exception("The last message must include one item of type \'text\'") }}\n        {%- elif (content_types | select(\'equalto\', \'text\') | list | length > 1) or (content_types | select(\'equalto\', \'audio\') | list | length > 1) %}\n            {{- raise_exception("At most two items are allowed in the last message: one \'text\' and one \'audio\'") }}\n        {%- endif %}\n\n    {#-- All other messages validation --#}\n    {%- else %}\n        {%- if content_types | select(\'equalto\', \'text\') | list | length != 1\n              or content_types | select(\'equalto\', \'audio\') | list | length != 1 %}\n            {{- raise_exception("Each message (except the last) must contain exactly one \'text\' and one \'audio\' item") }}\n        {%- elif content_types | reject(\'in\', [\'text\', \'audio\']) | list | length > 0 %}\n            {{- raise_exception("Only \'text\' and \'audio\' types are allowed in content") }}\n        {%- endif %}\n    {%- endif %}\n{%- endfor %}\n\n{%- for message in messages %}\n    {{- bos_token }}\n    {{- \'[\' + message[\'role\'] + \']\' }}\n    {{- message[\'content\'][0][\'text\'] }}\n    {{- eos_token }}\n    {%- if message[\'content\']|length > 1 %}\n        {{- \'<|AUDIO|><|audio_eos|>\' }}\n    {%- endif %}\n{%- endfor %}\n'
SPECIAL_TOKENS = ["<|begin_of_text|>", "<|end_of_text|>", "<|AUDIO|>", "<|audio_eos|>"]
CORPUS = ["Hello world, this is Jarvis speaking.", "The time is three oh five.", "[0][1] Ready."]


def build_tiny_csm(folder: Path, seed: int = 0) -> Path:
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import (CsmConfig, CsmForConditionalGeneration, CsmProcessor, EncodecFeatureExtractor,
                              MimiConfig, PreTrainedTokenizerFast)

    torch.manual_seed(seed)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(CORPUS * 10, trainers.BpeTrainer(
        vocab_size=300, special_tokens=SPECIAL_TOKENS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=SPECIAL_TOKENS[0],
                                        eos_token=SPECIAL_TOKENS[1], pad_token=SPECIAL_TOKENS[1])
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    processor = CsmProcessor(EncodecFeatureExtractor(feature_size=1, sampling_rate=24000, padding_value=0.0),
                             tokenizer, chat_template=CHAT_TEMPLATE)
    codec = MimiConfig(hidden_size=32, num_filters=4, codebook_size=CODEC_CODEBOOK, codebook_dim=16,
                       num_quantizers=NUM_CODEBOOKS, num_semantic_quantizers=1, upsampling_ratios=[8, 6, 5, 4],
                       num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2, intermediate_size=32,
                       vector_quantization_hidden_dimension=16, upsample_groups=32)
    config = CsmConfig(
        num_codebooks=NUM_CODEBOOKS, vocab_size=VOCAB, text_vocab_size=len(tokenizer), hidden_size=64,
        intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        max_position_embeddings=512, codebook_pad_token_id=VOCAB - 1, codebook_eos_token_id=0,
        bos_token_id=ids["<|begin_of_text|>"], pad_token_id=ids["<|end_of_text|>"],
        audio_token_id=ids["<|AUDIO|>"], audio_eos_token_id=ids["<|audio_eos|>"],
        depth_decoder_config=dict(num_codebooks=NUM_CODEBOOKS, backbone_hidden_size=64, vocab_size=VOCAB,
                                  hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                                  num_key_value_heads=2, max_position_embeddings=NUM_CODEBOOKS + 1),
        codec_config=codec.to_dict())
    model = CsmForConditionalGeneration(config)
    # Mimi's codebooks start as zeros (real weights fill them): give every code its own vector so
    # clips encode to varied codes and every code decodes to different audio.
    for name, buffer in model.codec_model.named_buffers():
        if name.endswith("embed_sum"):
            buffer.copy_(torch.randn_like(buffer))
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder
