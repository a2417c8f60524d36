"""Packaging for neoxcourse, driven by settings.ini (nbdev 2)."""
from configparser import ConfigParser

import setuptools

config = ConfigParser(delimiters=["="])
config.read("settings.ini", encoding="utf-8")
cfg = config["DEFAULT"]

requirements = cfg.get("requirements", "").split()
dev_requirements = cfg.get("dev_requirements", "").split()
# torch is deliberately absent: Colab ships its own build, and CPU machines install the CPU wheel first.
# The floors in settings.ini (transformers, tokenizers, datasets, wandb, numpy) are the versions the `lowest`
# workflow installs from constraints-lowest.txt and tests, with torch 2.13.0 (CPU): no older torch was tested.

setuptools.setup(
    name=cfg["lib_name"],
    version=cfg["version"],
    description=cfg["description"],
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    author=cfg["author"],
    author_email=cfg["author_email"],
    license="Apache-2.0",
    url=cfg["git_url"],
    keywords=cfg["keywords"],
    packages=setuptools.find_packages(include=["neoxcourse", "neoxcourse.*"]),
    include_package_data=True,
    package_data={"neoxcourse": ["neox_args.tsv"]},
    python_requires=">=" + cfg["min_python"],
    install_requires=requirements,
    extras_require={"dev": dev_requirements},
    entry_points={
        "console_scripts": cfg.get("console_scripts", "").split(),
        "nbdev": [f"{cfg['lib_path']}={cfg['lib_path']}._modidx:d"],
    },
    zip_safe=False,
)
