"""Train the ``raynas-fmnist-cnn`` feature extractor and write raynas/metrics/weights/fmnist_cnn.pt.

The extractor gives IS / FID / KID for Fashion-MNIST-like data without the Inception download. It is
trained on the full Fashion-MNIST train split (60k images, padded to 32x32 by ``raynas.data``) and
evaluated on the 10k test split. A few epochs on two CPU cores take a few minutes (from the repository
root; drop ``PYTHONPATH=.`` once raynas is pip-installed):

    PYTHONPATH=. python scripts/train_fmnist_extractor.py --epochs 4 --threads 2

Record the printed test accuracy (and the command) in raynas/metrics/weights/README.md.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
import torch.nn.functional as F

import raynas.data
from raynas.metrics.extractors import FMNIST_CNN_FORMAT, FMNIST_CNN_WEIGHTS, FMNISTNet, fmnist_preprocess


def evaluate(net: FMNISTNet, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 1000) -> float:
    """Top-1 accuracy on uint8 images, through the same preprocessing the extractor uses."""
    net.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(images), batch_size):
            logits = net(fmnist_preprocess(images[i:i + batch_size]))
            correct += int((logits.argmax(1) == labels[i:i + batch_size]).sum())
    return correct / len(images)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2, help="CPU threads (torch.set_num_threads)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--root", default=None, help="Fashion-MNIST folder (default: raynas.data's search)")
    ap.add_argument("--out", type=Path, default=FMNIST_CNN_WEIGHTS)
    args = ap.parse_args(argv)

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    x_train = raynas.data.load_images("fashion-mnist", "train", root=args.root, resolution=32, channels=1)
    y_train = raynas.data.load_labels("fashion-mnist", "train", root=args.root)
    x_test = raynas.data.load_images("fashion-mnist", "test", root=args.root, resolution=32, channels=1)
    y_test = raynas.data.load_labels("fashion-mnist", "test", root=args.root)
    print(f"train {tuple(x_train.shape)}, test {tuple(x_test.shape)}, device {device}", flush=True)

    net = FMNISTNet().to(device)
    steps_per_epoch = (len(x_train) + args.batch_size - 1) // args.batch_size
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=args.epochs * steps_per_epoch)
    gen = torch.Generator().manual_seed(args.seed)
    start = time.time()
    for epoch in range(args.epochs):
        net.train()
        perm = torch.randperm(len(x_train), generator=gen)
        total = 0.0
        for i in range(0, len(perm), args.batch_size):
            idx = perm[i:i + args.batch_size]
            xb = x_train[idx]
            flip = torch.rand(len(idx), generator=gen) < 0.5  # clothes are left-right symmetric
            xb = torch.where(flip.view(-1, 1, 1, 1), xb.flip(-1), xb)
            logits = net(fmnist_preprocess(xb.to(device)))
            loss = F.cross_entropy(logits, y_train[idx].to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        acc = evaluate(net, x_test.to(device), y_test.to(device))
        print(f"epoch {epoch + 1}/{args.epochs}: train loss {total / len(x_train):.4f}, test accuracy "
              f"{acc:.4f} ({time.time() - start:.0f}s)", flush=True)

    net = net.cpu().eval()
    acc = evaluate(net, x_test, y_test)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"format": FMNIST_CNN_FORMAT, "state_dict": net.state_dict(), "test_accuracy": acc,
                "epochs": args.epochs, "seed": args.seed, "train_images": len(x_train)}, args.out)
    print(f"test accuracy {acc:.4f}; wrote {args.out} ({args.out.stat().st_size / 1024:.0f} KiB) in "
          f"{time.time() - start:.0f}s", flush=True)


if __name__ == "__main__":
    main()
