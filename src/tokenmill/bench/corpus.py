"""Words, phrases and templates the benchmark's workloads are generated from (English and Chinese)."""

from __future__ import annotations

import random

ENGLISH_WORDS = """
the of and to in is that for it as was with be by on not he this are or his from at which but have an
they you were her she there been one all we their has would when if so what out up more will into some
time about than them can only other new its could these two may first then do any like my now over
such our man me even most made after also did many before must through back years where much your way
well down should because each just those people how too little state good very make world still own
see men work long get here between both life being under never day same another know while last might
us great old year off come since against go came right used take three system market price customer
product service quality delivery review rating order package report data team project plan city river
mountain weather morning evening music movie book story family friend school teacher student doctor
hospital travel hotel train flight coffee dinner recipe garden kitchen window phone screen battery
camera software update feature design color size fabric comfort value support refund shipping store
""".split()

_CHINESE_PHRASES = """
今天 天气 很好 我们 一起 去 公园 散步 这个 产品 质量 非常 不错 物流 速度 很快 客服 态度 热情 价格 合理
推荐 大家 购买 孩子 喜欢 学习 数学 老师 认真 负责 城市 交通 方便 周末 计划 旅行 看看 风景 吃 美食 朋友
聚会 聊天 工作 压力 比较 大 需要 休息 健康 生活 习惯 重要 早睡 早起 运动 读书 电影 音乐 历史 文化 科技
发展 迅速 手机 电脑 软件 更新 功能 设计 漂亮 颜色 尺寸 合适 包装 完好 收到 满意 下次 还会 再来 用户
兴趣 评估 情感 分析 问候 生成 内容 平台 视频 文章 评论 点赞 分享 关注
""".split()

_CHINESE_PUNCTUATION = "，。！？、"


def chinese_text(phrases: int, rng: random.Random) -> str:
    parts = []
    for i in range(phrases):
        parts.append(rng.choice(_CHINESE_PHRASES))
        if i % 6 == 5:
            parts.append(rng.choice(_CHINESE_PUNCTUATION))
    return "".join(parts)


CHAT_SYSTEM_PROMPTS = {
    "en": [
        "You are a helpful assistant.",
        "You are a friendly assistant for a shopping app. Answer briefly and politely.",
        "You are a travel guide. Give practical, concrete suggestions.",
        "You are a patient tutor who explains things step by step.",
    ],
    "zh": [
        "你是一个乐于助人的助手。",
        "你是购物应用的客服助手，请简洁礼貌地回答。",
        "你是一名导游，请给出实用、具体的建议。",
        "你是一位耐心的老师，请一步一步地解释。",
    ],
}

CHAT_OPENERS = {
    "en": [
        "Can you tell me more about {topic}?",
        "I have been thinking about {topic}. What would you suggest?",
        "Explain {topic} to me like I am new to it.",
        "What are the pros and cons of {topic}?",
        "Write a short note about {topic} for my friends.",
        "My manager asked me about {topic} and I am not sure what to say. Any ideas?",
    ],
    "zh": [
        "能给我详细讲讲{topic}吗？",
        "我最近在考虑{topic}，你有什么建议？",
        "请用简单的话给我解释一下{topic}。",
        "{topic}有哪些优点和缺点？",
        "帮我写一段关于{topic}的简短介绍，发给朋友。",
        "老板问我{topic}的情况，我该怎么回答？",
    ],
}

CHAT_TOPICS = {
    "en": ["planning a weekend trip", "learning to cook pasta", "choosing a laptop", "saving money each month",
           "starting to run in the morning", "keeping houseplants alive", "the history of tea", "writing a cover letter",
           "visiting Kyoto in autumn", "getting better sleep"],
    "zh": ["周末短途旅行", "学做家常菜", "挑选一台笔记本电脑", "每个月存钱", "早上跑步", "养绿植", "茶的历史",
           "写求职信", "秋天去杭州玩", "改善睡眠"],
}

USECASE_INSTRUCTIONS = {
    "interest_evaluation": "Read the user's recent activity below and rate their interest in each listed topic "
                           "from 0 to 10, one line per topic.\n\nActivity:\n",
    "sentiment_analysis": "Classify the overall sentiment of the comments below as positive, neutral or negative, "
                          "and give a one-sentence reason.\n\nComments:\n",
    "greeting_generation": "Write a one-line friendly greeting for this user, based on their profile.\n\nProfile:\n",
}
