"""Hand-made Examples splits of (item, label) pairs, as SessionExampleGen writes them."""

import os

import tensorflow as tf
from tfx.types import artifact_utils

from trainer_module import features


def write_split(examples, split: str, pairs) -> None:
    directory = artifact_utils.get_split_uri([examples], split)
    os.makedirs(directory)
    options = tf.io.TFRecordOptions(compression_type="GZIP")
    with tf.io.TFRecordWriter(os.path.join(directory, "data_tfrecord-00000-of-00001.gz"), options) as writer:
        for item, label in pairs:
            feature = {
                features.ITEM: tf.train.Feature(bytes_list=tf.train.BytesList(value=[item.encode()])),
                features.LABEL: tf.train.Feature(bytes_list=tf.train.BytesList(value=[label.encode()])),
                features.TIMESTAMP: tf.train.Feature(int64_list=tf.train.Int64List(value=[1])),
            }
            writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
